// Helpers of the e2e suite: the real kubectl against the cluster of
// KUBECONFIG (set by global-setup.ts), namespaces per test, polling, and zod
// views of the objects the tests read.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

export const REPO = path.join(import.meta.dirname, '../..');
/** local: the cluster of test/cluster with its node on this machine; external: E2E_KUBECONFIG (kind). */
export const MODE: 'local' | 'external' = process.env.E2E_MODE === 'external' ? 'external' : 'local';
export const SAMPLES = path.join(REPO, 'config/samples');

function kubectlBinary(): string {
  if (process.env.KUBECTL) return process.env.KUBECTL;
  const cache = process.env.SWARM_OPERATOR_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'swarm-operator');
  const built = path.join(cache, 'k8s', process.env.K8S_VERSION ?? 'v1.34.4', 'bin', 'kubectl');
  return existsSync(built) ? built : 'kubectl';
}
const KUBECTL = kubectlBinary();

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs kubectl; rejects with its stderr unless allowFail. */
export function kubectl(args: readonly string[], opts: { input?: string; allowFail?: boolean; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = execFile(KUBECTL, [...args], { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      if (code !== 0 && !opts.allowFail) reject(new Error(`kubectl ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
      else resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export async function kubectlJson<T>(schema: z.ZodType<T>, args: readonly string[]): Promise<T> {
  const { stdout } = await kubectl([...args, '-o', 'json']);
  return schema.parse(JSON.parse(stdout));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(intervalMs);
  }
}

const nodeList = z.object({
  items: z.array(
    z.object({ metadata: z.object({ name: z.string() }), status: z.object({ addresses: z.array(z.object({ type: z.string(), address: z.string() })) }) }),
  ),
});

/**
 * This machine's address as every node's pods reach it: the single node's
 * own IP (the pod bridge's gateway), or with several nodes the host end of
 * the bridge that links them (.1 of the nodes' /24: test/cluster/README.md).
 */
export async function hostAddress(): Promise<string> {
  const nodes = await kubectlJson(nodeList, ['get', 'nodes']);
  const ip = nodes.items[0]?.status.addresses.find((a) => a.type === 'InternalIP')?.address;
  if (!ip) throw new Error('no node InternalIP');
  return nodes.items.length > 1 ? ip.replace(/\.\d+$/, '.1') : ip;
}

export async function freshNamespace(prefix: string): Promise<string> {
  const ns = `e2e-${prefix}-${Math.random().toString(36).slice(2, 7)}`;
  await kubectl(['create', 'namespace', ns]);
  return ns;
}

/** Deletes a namespace without waiting (its swarms, pods, PVCs go with it). */
export async function dropNamespace(ns: string): Promise<void> {
  await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found'], { allowFail: true });
}

export const apply = (ns: string, manifest: unknown) => kubectl(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(manifest) });

const condition = z.object({ type: z.string(), status: z.string(), reason: z.string().optional(), message: z.string().optional() });
export const swarmSchema = z.object({
  metadata: z.object({ name: z.string(), namespace: z.string(), uid: z.string() }),
  status: z
    .object({
      phase: z.string().optional(),
      version: z.string().optional(),
      versionReason: z.string().optional(),
      activeVersion: z.string().optional(),
      deliveryRate: z.number().optional(),
      coordinationTimeMs: z.number().optional(),
      coordinatorAttempts: z.number().optional(),
      coordinatorPod: z.string().optional(),
      completedAgents: z.string().optional(),
      failedIndexes: z.string().optional(),
      progressPod: z.string().optional(),
      shardCount: z.number().optional(),
      shards: z
        .array(
          z.object({
            index: z.number(),
            indexes: z.string(),
            pod: z.string().optional(),
            node: z.string().optional(),
            phase: z.string().optional(),
            progressPod: z.string().optional(),
          }),
        )
        .optional(),
      interruptedAgents: z.string().optional(),
      rerunAgents: z.number().optional(),
      agents: z.object({ total: z.number(), completed: z.number(), failed: z.number() }).partial().optional(),
      fallback: z.object({ from: z.string(), to: z.string(), reason: z.string() }).optional(),
      conditions: z.array(condition).optional(),
    })
    .optional(),
});
export type Swarm = z.infer<typeof swarmSchema>;
export const getSwarm = (ns: string, name: string) => kubectlJson(swarmSchema, ['get', 'swarm', '-n', ns, name]);
export const listSwarms = async (ns: string) => (await kubectlJson(z.object({ items: z.array(swarmSchema) }), ['get', 'swarms', '-n', ns])).items;

export const podSchema = z.object({
  metadata: z.object({ name: z.string(), uid: z.string(), labels: z.record(z.string(), z.string()).optional() }),
  spec: z.object({ nodeName: z.string().optional(), serviceAccountName: z.string().optional(), containers: z.array(z.object({ image: z.string() })) }),
  status: z.object({ phase: z.string().optional() }).optional(),
});
export type Pod = z.infer<typeof podSchema>;
export const swarmPods = async (ns: string, swarm: string) =>
  (await kubectlJson(z.object({ items: z.array(podSchema) }), ['get', 'pods', '-n', ns, '-l', `swarm.cfn.dev/swarm=${swarm}`])).items;

export const eventSchema = z.object({
  items: z.array(
    z.object({
      reason: z.string().optional(),
      message: z.string().optional(),
      type: z.string().optional(),
      involvedObject: z.object({ name: z.string().optional(), kind: z.string().optional() }),
    }),
  ),
});
export const events = async (ns: string) => (await kubectlJson(eventSchema, ['get', 'events', '-n', ns])).items;

/** Parses an index list like "0-9,15" (status.completedAgents, status.failedIndexes) into a set. */
export function indexSet(spec: string | undefined): Set<number> {
  const out = new Set<number>();
  if (!spec) return out;
  for (const part of spec.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    for (let i = a; i <= (b ?? a); i++) out.add(i);
  }
  return out;
}

/** The operator's image (the chart's), which the coordinator pods run too. */
export async function operatorImage(): Promise<string> {
  const dep = await kubectlJson(
    z.object({
      items: z.array(z.object({ spec: z.object({ template: z.object({ spec: z.object({ containers: z.array(z.object({ image: z.string() })) }) }) }) })),
    }),
    ['get', 'deployments', '-A', '-l', 'app.kubernetes.io/name=swarm-operator'],
  );
  const image = dep.items[0]?.spec.template.spec.containers[0]?.image;
  if (!image) throw new Error('no swarm-operator deployment found (is the chart installed?)');
  return image;
}

/** The sample manifest, parsed, so a test can rename or adjust it. */
export function readSample(file: string): string {
  return readFileSync(path.join(SAMPLES, file), 'utf8');
}

export const tempDir = (prefix: string) => mkdtempSync(path.join(tmpdir(), prefix));
