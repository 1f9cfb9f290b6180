// Shared harness of the operator's integration tests: a real API server (the
// local control plane of the global setup), the CRDs from crds/, a namespace
// per test file, and an in-process operator. There is no kubelet: tests play
// its part by writing pod status, and the coordinator's by publishing status.
import { jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import pino from 'pino';
import { KubeClient, resourcePath } from '../../../operator/k8s/client.js';
import { isAlreadyExists, isNotFound } from '../../../operator/k8s/errors.js';
import { startOperator } from '../../../operator/manager/operator-manager.js';
import type { ChildProcess } from 'node:child_process';
import type { KubeObject } from '../../../operator/k8s/client.js';
import type { OperatorOptions, RunningOperator } from '../../../operator/manager/operator-manager.js';

// Real API server round trips: far slower than jest's 5 s default.
jest.setTimeout(120_000);

export const REPO = join(import.meta.dirname, '../../..');
export const SWARMS = { group: 'swarm.cfn.dev', version: 'v1alpha1', plural: 'swarms' };
export const silentLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export function client(): KubeClient {
  if (!process.env.KUBECONFIG) throw new Error('KUBECONFIG is not set: run through the integration project');
  return KubeClient.load(process.env.KUBECONFIG);
}

export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Applies every CRD in crds/ and waits until the API server serves them. */
export async function installCrds(c: KubeClient): Promise<void> {
  const dir = join(REPO, 'crds');
  const { readdirSync } = await import('node:fs');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    const crd = parse(readFileSync(join(dir, file), 'utf8')) as KubeObject;
    const name = crd.metadata?.name ?? '';
    await c.apply(resourcePath({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', name }), crd, {
      fieldManager: 'integration-tests',
      force: true,
    });
    await waitFor(`CRD ${name} established`, async () => {
      const got = await c.get<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
        resourcePath({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', name }),
      );
      return got.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') || undefined;
    });
  }
}

/** Applies the shared coordinator identity's admission policy and binding (config/rbac, as the chart installs them). */
export async function installCoordinatorPolicy(c: KubeClient): Promise<void> {
  const docs = parseAllDocuments(readFileSync(join(REPO, 'config/rbac/coordinator_admission_policy.yaml'), 'utf8')).map((d) => d.toJS() as KubeObject);
  for (const doc of docs) {
    const plural = doc.kind === 'ValidatingAdmissionPolicy' ? 'validatingadmissionpolicies' : 'validatingadmissionpolicybindings';
    await c.apply(resourcePath({ group: 'admissionregistration.k8s.io', version: 'v1', plural, name: doc.metadata?.name ?? '' }), doc, {
      fieldManager: 'integration-tests',
      force: true,
    });
  }
}

export async function createNamespace(c: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    await c.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
  }
  // The service account admission needs the default ServiceAccount when pods are created.
  await c
    .create(`/api/v1/namespaces/${name}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } })
    .catch(() => undefined);
  return name;
}

export async function deleteNamespace(c: KubeClient, name: string): Promise<void> {
  await c.delete(`/api/v1/namespaces/${name}`).catch((e: unknown) => {
    if (!isNotFound(e)) throw e;
  });
}

export function swarmManifest(namespace: string, name: string, spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name, namespace },
    spec: { objective: 'Fix every lint error in src/', agents: 10, agent: { command: ['cat'] }, ...spec },
  };
}

export const policyPath = (namespace: string, name?: string, subresource?: string) =>
  resourcePath({
    group: 'swarm.cfn.dev',
    version: 'v1alpha1',
    plural: 'rolloutpolicies',
    namespace,
    ...(name ? { name } : {}),
    ...(subresource ? { subresource } : {}),
  });

export const swarmPath = (namespace: string, name?: string, subresource?: string) =>
  resourcePath({ ...SWARMS, namespace, ...(name ? { name } : {}), ...(subresource ? { subresource } : {}) });
export const podPath = (namespace: string, name?: string, subresource?: string) =>
  resourcePath({ group: '', version: 'v1', plural: 'pods', namespace, ...(name ? { name } : {}), ...(subresource ? { subresource } : {}) });

export type SwarmObject = KubeObject & {
  metadata: { name: string; namespace: string; uid: string; generation?: number; finalizers?: string[]; resourceVersion?: string };
  status?: {
    phase?: string;
    version?: string;
    versionReason?: string;
    activeVersion?: string;
    coordinatorPod?: string;
    coordinatorAttempts?: number;
    completedAgents?: string;
    failedIndexes?: string;
    agents?: { total: number; completed: number; failed: number };
    deliveryRate?: number;
    fallback?: { from: string; to: string; reason: string; time: string };
    interruptedAgents?: string;
    rerunAgents?: number;
    conditions?: Array<{ type: string; status: string; reason: string; message: string; observedGeneration?: number }>;
  };
};

export type PodObject = KubeObject & {
  metadata: {
    name: string;
    uid?: string;
    labels: Record<string, string>;
    ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }>;
    creationTimestamp?: string;
  };
  spec: {
    serviceAccountName: string;
    securityContext: Record<string, unknown>;
    containers: Array<{
      name: string;
      args: string[];
      env: Array<{ name: string; value?: string }>;
      securityContext: Record<string, unknown>;
      resources?: { limits?: Record<string, string>; requests?: Record<string, string> };
      volumeMounts: Array<{ name: string; mountPath: string }>;
    }>;
    volumes: Array<{ name: string; emptyDir?: { medium?: string; sizeLimit?: string } }>;
  };
  status?: { phase?: string };
};

export const getSwarm = (c: KubeClient, ns: string, name: string) => c.get<SwarmObject>(swarmPath(ns, name));

export async function listPods(c: KubeClient, ns: string): Promise<PodObject[]> {
  return (await c.get<{ items: PodObject[] }>(podPath(ns))).items;
}

/** Plays the kubelet: writes a pod's status. */
export async function setPodStatus(c: KubeClient, ns: string, pod: string, status: Record<string, unknown>): Promise<void> {
  await c.mergePatch(podPath(ns, pod, 'status'), { status });
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export const podRunning = (ready: boolean) => ({
  phase: 'Running',
  conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: now() }],
  containerStatuses: [{ name: 'coordinator', ready, restartCount: 0, image: 'x', imageID: '', state: { running: { startedAt: now() } } }],
});

export const podTerminated = (phase: 'Succeeded' | 'Failed', exitCode: number, message?: string, reason?: string) => ({
  phase,
  ...(phase === 'Failed' && reason === 'Evicted' ? { reason } : {}),
  containerStatuses: [
    {
      name: 'coordinator',
      ready: false,
      restartCount: 0,
      image: 'x',
      imageID: '',
      state: {
        terminated: {
          exitCode,
          reason: reason ?? (exitCode === 0 ? 'Completed' : 'Error'),
          ...(message ? { message } : {}),
          startedAt: now(),
          finishedAt: now(),
        },
      },
    },
  ],
});

export async function events(c: KubeClient, ns: string): Promise<Array<{ reason: string; message: string; type: string; involvedObject: { name: string } }>> {
  return (await c.get<{ items: Array<{ reason: string; message: string; type: string; involvedObject: { name: string } }> }>(`/api/v1/namespaces/${ns}/events`))
    .items;
}

export async function runOperator(overrides: Partial<OperatorOptions> = {}): Promise<RunningOperator> {
  return startOperator({
    logger: silentLogger,
    client: client(),
    image: 'swarm-operator:test',
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    workers: 4,
    ...overrides,
  });
}

/** GET on the operator's metrics server: /metrics, /healthz, /readyz. */
export async function scrape(port: number | undefined, path = '/metrics'): Promise<{ status: number; text: string }> {
  if (port === undefined) throw new Error('the operator serves no metrics');
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

/**
 * The value of one sample in Prometheus text: `name` with exactly these labels
 * (any order); undefined when the series is absent.
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? [];
    if ([...got].sort().join(',') === want) return Number(m[3]);
  }
  return undefined;
}

/**
 * A kubeconfig with a fresh token of `namespace/sa`, like a pod's mounted one;
 * with `boundPod`, bound to that pod as the kubelet's is (the token then names it).
 */
export async function tokenKubeconfig(
  admin: KubeClient,
  namespace: string,
  sa: string,
  dir: string,
  boundPod?: { name: string; uid?: string | undefined },
): Promise<string> {
  const tr = await admin.create<{ status: { token: string } }>(`/api/v1/namespaces/${namespace}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600, ...(boundPod ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: boundPod.name, uid: boundPod.uid } } : {}) },
  });
  const cluster = admin.config.getCurrentCluster()!;
  const file = join(dir, `${namespace}-${sa}${boundPod ? `-${boundPod.name}` : ''}.kubeconfig`);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'c',
          cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData ?? Buffer.from(readFileSync(cluster.caFile!)).toString('base64') },
        },
      ],
      users: [{ name: sa, user: { token: tr.status.token } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: sa, namespace } }],
      'current-context': 'x',
    }),
  );
  return file;
}

/** `cfn operator` as a real process, watching `ns` and electing its leader there, /metrics on loopback `port`. */
export function operatorProcess(ns: string, port: number): ChildProcess {
  return spawn(
    process.execPath,
    [
      join(REPO, 'bin/cfn.js'),
      'operator',
      '--namespaces',
      ns,
      '--metrics-port',
      String(port),
      '--metrics-host',
      '127.0.0.1',
      '--leader-election-namespace',
      ns,
      '--default-version',
      'v1',
    ],
    { env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'ignore'] },
  );
}

/**
 * A coordinator pod's agent container, played here: the agent launcher
 * serving a channel under `dir` (the pod's CFN_LAUNCHER_DIR). stop() ends it,
 * as the kubelet ends the sidecar once the coordinator has ended.
 */
export function startAgentLauncher(dir: string, name: string): { channel: string; stop(): void } {
  const channel = join(dir, `${name}.launch`);
  const child = spawn(join(REPO, 'bash/native/launcher'), ['serve', channel], { stdio: 'ignore' });
  return { channel, stop: () => void child.kill('SIGTERM') };
}

/**
 * Runs a coordinator pod's container command here, with the pod's env, a
 * token of its ServiceAccount (`kubeconfig`) and its agent container's
 * launcher beside it, files under `work`; `done` resolves with the exit code.
 */
export function runPodCommandHere(
  pod: PodObject,
  o: { work: string; shm: string; kubeconfig: string; env?: Record<string, string> },
): { child: ChildProcess; done: Promise<number | null> } {
  const container = pod.spec.containers[0]!;
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: o.work, LOG_LEVEL: 'warn' };
  for (const e of container.env) if (e.value !== undefined) env[e.name] = e.value;
  const launcher = startAgentLauncher(o.work, pod.metadata.name);
  Object.assign(env, {
    CFN_LAUNCHER_DIR: launcher.channel,
    KUBECONFIG: o.kubeconfig,
    CFN_SHM_PATH: o.shm,
    CFN_RESULTS_DIR: o.work,
    CFN_MEMORY_DB: join(o.work, `${pod.metadata.name}.sqlite`),
    CFN_TERMINATION_LOG: join(o.work, `${pod.metadata.name}.termination`),
    ...o.env,
  });
  const child = spawn(process.execPath, [join(REPO, 'bin/cfn.js'), ...container.args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      if (code !== 0 && process.env.TEST_LOG_LEVEL) console.error(stderr);
      launcher.stop();
      resolve(code);
    }),
  );
  return { child, done };
}
