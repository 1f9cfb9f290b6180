import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isNotFound } from '../../../operator/k8s/errors.js';
import { StatusPublisher } from '../../../operator/coordinator/status-publisher.js';
import {
  client,
  createNamespace,
  deleteNamespace,
  events,
  getSwarm,
  installCrds,
  listPods,
  podRunning,
  podTerminated,
  runOperator,
  sample,
  scrape,
  setPodStatus,
  swarmManifest,
  swarmPath,
  waitFor,
} from './harness.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';
import type { PodObject } from './harness.js';
import { agentResponse } from '../../helpers/agent-response.js';

const c = client();
let ns: string;
let op: RunningOperator;

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'swarm-life');
  op = await runOperator({ namespaces: [ns] });
});

afterAll(async () => {
  await op?.stop();
  await deleteNamespace(c, ns);
});

const RESOURCES = { limits: { cpu: '500m', memory: '256Mi' }, requests: { cpu: '100m', memory: '128Mi' } };
/** The restricted Pod Security Standard, on the pod and its container. */
function expectRestricted(pod: PodObject): void {
  expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  expect(pod.spec.containers[0]!.securityContext).toMatchObject({
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
}

const podOf = async (name: string, attempt = 1): Promise<PodObject | undefined> =>
  (await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === name && p.metadata.labels['swarm.cfn.dev/attempt'] === String(attempt));

describe('Swarm lifecycle on a real API server', () => {
  it('creates a V2 coordinator pod with exactly the promised spec', async () => {
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, 'v2-spec', { coordination: { version: 'v2' }, v2: { shmSizeLimit: '64Mi' }, agent: { command: ['cat'], resources: RESOURCES } }),
    );
    const pod = await waitFor('v2 pod', () => podOf('v2-spec'));
    const sw = await getSwarm(c, ns, 'v2-spec');
    expect(pod.metadata.name).toBe('v2-spec-v2-1');
    expect(pod.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'Swarm', name: 'v2-spec', controller: true });
    expect(pod.spec.serviceAccountName).toBe('v2-spec-coordinator');
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const container = pod.spec.containers[0]!;
    expect(container.args).toEqual(['coordinate', '--swarm', 'v2-spec', '--namespace', ns, '--version', 'v2']);
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expectRestricted(pod);
    // The agents' resources size their container; no token but the coordinator's own.
    const agent = (pod.spec as unknown as { initContainers: { name: string; resources?: unknown }[] }).initContainers.find((x) => x.name === 'agent');
    expect(agent?.resources).toEqual(RESOURCES);
    expect((pod.spec as unknown as { automountServiceAccountToken: boolean }).automountServiceAccountToken).toBe(false);
    expect(pod.spec.volumes.find((v) => v.name === 'dshm')?.emptyDir).toEqual({ medium: 'Memory', sizeLimit: '64Mi' });
    expect(container.volumeMounts).toContainEqual({ name: 'dshm', mountPath: '/dev/shm' });
    expect(JSON.stringify(pod.spec.containers[0])).toContain(`/dev/shm/cfn/${sw.metadata.uid}/health.json`);
    // Status: decided once, with its reason, and a finalizer.
    const decided = await waitFor('version in status', async () =>
      (await getSwarm(c, ns, 'v2-spec')).status?.version ? getSwarm(c, ns, 'v2-spec') : undefined,
    );
    expect(decided.status).toMatchObject({ version: 'v2', versionReason: 'spec.coordination.version=v2', activeVersion: 'v2', coordinatorPod: 'v2-spec-v2-1' });
    expect(decided.metadata.finalizers).toContain('swarm.cfn.dev/cleanup');
    // Least privilege: a Role limited to this Swarm.
    const role = await c.get<{ rules: Array<{ resources: string[]; resourceNames: string[] }> }>(
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles/v2-spec-coordinator`,
    );
    expect(role.rules.every((r) => r.resourceNames.length === 1 && r.resourceNames[0] === 'v2-spec')).toBe(true);
  });

  it('follows the pod: ready -> Running, progress from the coordinator, succeeded -> Succeeded and Complete when delivery meets the successPolicy', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'happy', { agents: 4, coordination: { version: 'v2' }, successPolicy: { minDeliveryRate: 75 } }));
    const pod = await waitFor('pod', () => podOf('happy'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    await waitFor('Running', async () => (await getSwarm(c, ns, 'happy')).status?.phase === 'Running');
    // The coordinator publishes progress with its own field manager.
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'happy', total: 4, intervalMs: 10 });
    for (const index of [0, 1, 2, 3]) {
      pub.onResponse(agentResponse(index, { status: index === 3 ? 'failed' : 'completed', exitCode: index === 3 ? 1 : 0, error: index === 3 ? 'boom' : null }));
    }
    await pub.flush({ status: 'completed' });
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const done = await waitFor('Succeeded', async () => {
      const s = await getSwarm(c, ns, 'happy');
      return s.status?.phase === 'Succeeded' ? s : undefined;
    });
    expect(done.status).toMatchObject({
      agents: { total: 4, completed: 3, failed: 1 },
      deliveryRate: 75,
      completedAgents: '0-2',
      failedIndexes: '3',
      version: 'v2',
    });
    const complete = done.status?.conditions?.find((x) => x.type === 'Complete');
    expect(complete).toMatchObject({ status: 'True', observedGeneration: done.metadata.generation });
    expect(complete?.message).toBe('3/4 agents completed, 1 failed: delivery 75% >= 75%');
    await waitFor('events', async () => {
      const reasons = (await events(c, ns)).filter((e) => e.involvedObject.name === 'happy').map((e) => e.reason);
      return ['VersionSelected', 'CoordinatorCreated', 'Completed'].every((r) => reasons.includes(r)) || undefined;
    });
  });

  it.each([
    [
      'one of four agents failing, the default successPolicy (100%)',
      'short',
      4,
      [3],
      undefined,
      '3/4 agents completed, 1 failed: delivery 75% < 100% (spec.successPolicy.minDeliveryRate)',
    ],
    ['every agent failing', 'none', 4, [0, 1, 2, 3], 50, '0/4 agents completed, 4 failed: delivery 0% < 50% (spec.successPolicy.minDeliveryRate)'],
  ])('ends Failed (DeliveryBelowSuccessPolicy) with the figures: %s', async (_name, name, total, failing, minDeliveryRate, message) => {
    const spec = { agents: total, coordination: { version: 'v2' }, ...(minDeliveryRate !== undefined ? { successPolicy: { minDeliveryRate } } : {}) };
    await c.create(swarmPath(ns), swarmManifest(ns, name, spec));
    const pod = await waitFor('pod', () => podOf(name));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    await waitFor('Running', async () => (await getSwarm(c, ns, name)).status?.phase === 'Running');
    const pub = new StatusPublisher({ client: c, namespace: ns, name, total, intervalMs: 10 });
    for (let index = 0; index < total; index++) {
      const bad = failing.includes(index);
      pub.onResponse(agentResponse(index, { status: bad ? 'failed' : 'completed', exitCode: bad ? 2 : 0, error: bad ? 'exit code 2' : null }));
    }
    await pub.flush({ status: 'completed' });
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const done = await waitFor('Failed', async () => {
      const s = await getSwarm(c, ns, name);
      return s.status?.phase === 'Failed' ? s : undefined;
    });
    expect(done.status?.conditions?.find((x) => x.type === 'Failed')).toMatchObject({ status: 'True', reason: 'DeliveryBelowSuccessPolicy', message });
    expect(done.status?.conditions?.find((x) => x.type === 'Complete')).toBeUndefined();
    expect(done.status?.deliveryRate).toBe(((total - failing.length) / total) * 100);
    const ev = await waitFor('event', async () =>
      (await events(c, ns)).find((e) => e.involvedObject.name === name && e.reason === 'DeliveryBelowSuccessPolicy'),
    );
    expect(ev).toMatchObject({ type: 'Warning', message });
    const rate = ((total - failing.length) / total) * 100;
    await waitFor(
      'swarm_delivery_rate',
      async () => sample((await scrape(op.port)).text, 'swarm_delivery_rate', { namespace: ns, name }) === rate || undefined,
    );
  });

  it('falls back to a V1 pod within 5 s of a V2 preflight failure, with the real reason', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'no-shm', { coordination: { version: 'v2' }, agent: { command: ['cat'], resources: RESOURCES } }));
    const pod = await waitFor('v2 pod', () => podOf('no-shm'));
    const failedAt = Date.now();
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 3, '/dev/shm/cfn not writable'));
    const v1 = await waitFor('v1 pod', () => podOf('no-shm', 2), 5000);
    expect(Date.now() - failedAt).toBeLessThan(5000);
    expect(v1.metadata.labels['swarm.cfn.dev/version']).toBe('v1');
    expect(v1.spec.volumes.some((v) => v.emptyDir?.medium === 'Memory')).toBe(false);
    // The fallback pod: same restricted security, the agents' resources from the spec on their container.
    expectRestricted(v1);
    const agent = (v1.spec as unknown as { initContainers: { name: string; resources?: unknown }[] }).initContainers.find((x) => x.name === 'agent');
    expect(agent?.resources).toEqual(RESOURCES);
    expect(v1.spec.containers[0]!.args).toEqual(['coordinate', '--swarm', 'no-shm', '--namespace', ns, '--version', 'v1']);
    const sw = await waitFor('fallback status', async () => {
      const s = await getSwarm(c, ns, 'no-shm');
      return s.status?.fallback ? s : undefined;
    });
    expect(sw.status?.fallback).toMatchObject({ from: 'v2', to: 'v1', reason: '/dev/shm/cfn not writable' });
    expect(sw.status).toMatchObject({ version: 'v2', activeVersion: 'v1', phase: 'FallingBack' });
    expect(sw.status?.conditions?.find((x) => x.type === 'FallbackActive')).toMatchObject({ status: 'True', message: '/dev/shm/cfn not writable' });
    // Events are written right after status: wait for it rather than race it.
    const ev = await waitFor('fallback event', async () =>
      (await events(c, ns)).find((e) => e.involvedObject.name === 'no-shm' && e.reason === 'FallbackToV1'),
    );
    expect(ev.message).toBe('V2 unavailable (/dev/shm/cfn not writable), using V1 fallback');
    const metrics = await op.metrics.registry.getSingleMetricAsString('swarm_fallback_total');
    expect(metrics).toMatch(/swarm_fallback_total\{reason="preflight"\} [1-9]/);
  });

  it('regression: a V2 pod that was ready and turns NotReady (probe flap, run ending) is not a startup timeout', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'flap', { coordination: { version: 'v2', fallbackTimeoutSeconds: 1 } }));
    const pod = await waitFor('v2 pod', () => podOf('flap'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    await waitFor('Running', async () => ((await getSwarm(c, ns, 'flap')).status?.phase === 'Running' ? true : undefined));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(false));
    // Past the 1 s startup limit: still the V2 pod, no fallback.
    await new Promise((r) => setTimeout(r, 2000));
    expect(await podOf('flap', 2)).toBeUndefined();
    expect((await getSwarm(c, ns, 'flap')).status?.fallback).toBeUndefined();
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'flap', total: 10, intervalMs: 10 });
    for (let index = 0; index < 10; index++) pub.onResponse(agentResponse(index));
    await pub.flush({ status: 'completed' });
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('complete', async () => {
      const s = await getSwarm(c, ns, 'flap');
      return s.status?.phase === 'Succeeded' ? s : undefined;
    });
    expect(sw.status?.activeVersion).toBe('v2');
  });

  it('regression: a V2 coordinator that publishes progress before its first readiness probe is not a startup timeout', async () => {
    // A short run on a real kubelet: the coordinator delivers every agent and
    // removes health.json before the first probe passes; kubelet posts the
    // pod's end later. Found by the demo (config/samples/swarm-auto.yaml).
    await c.create(swarmPath(ns), swarmManifest(ns, 'quick', { agents: 3, coordination: { version: 'v2', fallbackTimeoutSeconds: 2 } }));
    const pod = await waitFor('v2 pod', () => podOf('quick'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(false));
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'quick', total: 3, pod: pod.metadata.name, intervalMs: 10 });
    for (const index of [0, 1, 2]) pub.onResponse(agentResponse(index));
    await pub.flush({ status: 'completed' });
    const running = await waitFor('Running on progress', async () => {
      const s = await getSwarm(c, ns, 'quick');
      return s.status?.phase === 'Running' ? s : undefined;
    });
    expect(running.status?.conditions?.find((x) => x.type === 'CoordinatorReady')).toMatchObject({
      status: 'True',
      reason: 'Progressing',
      message: 'coordinator pod quick-v2-1 publishes progress (3/3 agents done)',
    });
    // Past the 2 s startup limit and still never Ready: no fallback, no V1 pod.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await podOf('quick', 2)).toBeUndefined();
    expect((await getSwarm(c, ns, 'quick')).status?.fallback).toBeUndefined();
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Succeeded', async () => {
      const s = await getSwarm(c, ns, 'quick');
      return s.status?.phase === 'Succeeded' ? s : undefined;
    });
    expect(sw.status).toMatchObject({ activeVersion: 'v2', deliveryRate: 100, progressPod: 'quick-v2-1' });
    expect(sw.status?.fallback).toBeUndefined();
  });

  it('progress published by another pod is no proof: a V2 pod that runs and is never ready still falls back', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'stale', { agents: 3, coordination: { version: 'v2', fallbackTimeoutSeconds: 1 } }));
    const pod = await waitFor('v2 pod', () => podOf('stale'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(false));
    // What an earlier coordinator of this swarm would have left in status.
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'stale', total: 3, pod: 'stale-v2-0', intervalMs: 10 });
    pub.onResponse(agentResponse(0));
    await pub.flush();
    await waitFor('v1 pod', () => podOf('stale', 2), 8000);
    expect(await waitFor('fallback in status', async () => (await getSwarm(c, ns, 'stale')).status?.fallback?.reason)).toBe(
      'V2 coordinator not ready within 1s of its container starting',
    );
  });

  it('falls back when the V2 container runs and is not ready within fallbackTimeoutSeconds', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'slow', { coordination: { version: 'v2', fallbackTimeoutSeconds: 1 } }));
    const pod = await waitFor('v2 pod', () => podOf('slow'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(false));
    const v1 = await waitFor('v1 pod', () => podOf('slow', 2), 8000);
    expect(v1.metadata.labels['swarm.cfn.dev/version']).toBe('v1');
    expect(await waitFor('fallback in status', async () => (await getSwarm(c, ns, 'slow')).status?.fallback?.reason)).toBe(
      'V2 coordinator not ready within 1s of its container starting',
    );
    expect(await op.metrics.registry.getSingleMetricAsString('swarm_fallback_total')).toMatch(/swarm_fallback_total\{reason="startup_timeout"\} [1-9]/);
  });

  it('fails with a clear condition when V2 cannot start and fallback is disabled', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'strict', { coordination: { version: 'v2', fallbackEnabled: false } }));
    const pod = await waitFor('v2 pod', () => podOf('strict'));
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 3, 'bash >= 4 not found'));
    const sw = await waitFor('Failed', async () => {
      const s = await getSwarm(c, ns, 'strict');
      return s.status?.phase === 'Failed' ? s : undefined;
    });
    expect(sw.status?.conditions?.find((x) => x.type === 'Failed')).toMatchObject({
      reason: 'V2Unavailable',
      message: 'V2 unavailable (bash >= 4 not found) and fallback is disabled',
    });
    expect(
      (await listPods(c, ns)).filter((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === 'strict' && p.metadata.labels['swarm.cfn.dev/version'] === 'v1'),
    ).toHaveLength(0);
  });

  it('replaces a V1 coordinator deleted mid-run; the replacement resumes past completedAgents and failedIndexes', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'resume', { agents: 6, coordination: { version: 'v1' } }));
    const pod = await waitFor('v1 pod', () => podOf('resume'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    // Mid-run means the operator saw it run: a pod deleted before the operator
    // ever observed it is recreated under the same attempt (the creation may
    // never have happened), which is not what this test is about.
    await waitFor('Running', async () => ((await getSwarm(c, ns, 'resume')).status?.phase === 'Running' ? true : undefined));
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'resume', total: 6, intervalMs: 10 });
    for (const index of [0, 1, 4]) pub.onResponse(agentResponse(index));
    pub.onResponse(agentResponse(2, { status: 'failed', exitCode: 3, attempts: 3, error: 'exit code 3' }));
    await pub.flush();
    await waitFor('progress', async () => {
      const st = (await getSwarm(c, ns, 'resume')).status;
      return st?.completedAgents === '0-1,4' && st.failedIndexes === '2' && st.deliveryRate === 50 ? true : undefined;
    });
    await c.delete(`/api/v1/namespaces/${ns}/pods/${pod.metadata.name}`, { gracePeriodSeconds: 0 });
    const replacement = await waitFor('replacement', () => podOf('resume', 2)).catch(async (e: unknown) => {
      const pods = (await listPods(c, ns)).filter((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === 'resume').map((p) => p.metadata.name);
      throw new Error(`${String(e)}; pods: ${pods.join(',')}; status: ${JSON.stringify((await getSwarm(c, ns, 'resume')).status)}`);
    });
    expect(replacement.metadata.labels['swarm.cfn.dev/version']).toBe('v1');
    expect(replacement.spec.containers[0]!.env).toContainEqual({ name: 'CFN_COMPLETED_AGENTS', value: '0-1,4' });
    expect(replacement.spec.containers[0]!.env).toContainEqual({ name: 'CFN_FAILED_INDEXES', value: '2' });
    await waitFor(
      'CoordinatorLost event',
      async () => (await events(c, ns)).some((e) => e.involvedObject.name === 'resume' && e.reason === 'CoordinatorLost') || undefined,
    );
  });

  it('deletion removes the coordinator pods, the finalizer, and the ServiceAccount, Role and RoleBinding', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'doomed', { coordination: { version: 'v1' } }));
    await waitFor('pod', () => podOf('doomed'));
    const sw = await waitFor('finalizer', async () => {
      const s = await getSwarm(c, ns, 'doomed');
      return s.metadata.finalizers?.includes('swarm.cfn.dev/cleanup') ? s : undefined;
    });
    const rbac = [
      `/api/v1/namespaces/${ns}/serviceaccounts/doomed-coordinator`,
      ...['roles', 'rolebindings'].map((r) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/${r}/doomed-coordinator`),
    ];
    // Each owned by the Swarm, so the garbage collector removes it with the Swarm.
    for (const path of rbac) {
      const obj = await c.get<{ metadata: { ownerReferences?: Array<Record<string, unknown>> } }>(path);
      expect(obj.metadata.ownerReferences).toEqual([
        { apiVersion: 'swarm.cfn.dev/v1alpha1', kind: 'Swarm', name: 'doomed', uid: sw.metadata.uid, controller: true, blockOwnerDeletion: true },
      ]);
    }
    await c.delete(swarmPath(ns, 'doomed'));
    await waitFor('swarm gone', async () => {
      try {
        await getSwarm(c, ns, 'doomed');
        return undefined;
      } catch {
        return true;
      }
    });
    await waitFor('pods gone or terminating', async () => {
      const pods = (await listPods(c, ns)).filter((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === 'doomed');
      return pods.every((p) => (p.metadata as { deletionTimestamp?: string }).deletionTimestamp) || undefined;
    });
    const gone = async (path: string) =>
      c.get(path).then(
        () => false,
        (e: unknown) => isNotFound(e),
      );
    await waitFor('ServiceAccount, Role and RoleBinding gone', async () => (await Promise.all(rbac.map(gone))).every(Boolean) || undefined, 60_000, 200);
  });
});

describe('a Swarm recreated under the name of a deleted one', () => {
  it('regression: never got a pod while the old ServiceAccount/Role/RoleBinding awaited garbage collection (apply kept both controller ownerReferences: 422)', async () => {
    // The garbage collector takes its time (tens of seconds right after the CRD
    // appeared): the new Swarm finds its RBAC objects still owned by the old one.
    await c.create(swarmPath(ns), swarmManifest(ns, 'reborn', { coordination: { version: 'v1' } }));
    await waitFor('pod', () => podOf('reborn'));
    const old = await waitFor('finalizer', async () => {
      const s = await getSwarm(c, ns, 'reborn');
      return s.metadata.finalizers?.includes('swarm.cfn.dev/cleanup') ? s : undefined;
    });
    await c.delete(swarmPath(ns, 'reborn'));
    await waitFor('swarm gone', async () =>
      getSwarm(c, ns, 'reborn').then(
        () => undefined,
        (e: unknown) => isNotFound(e) || undefined,
      ),
    );
    await c.create(swarmPath(ns), swarmManifest(ns, 'reborn', { coordination: { version: 'v1' } }));
    const fresh = await waitFor('the new swarm decided', async () => {
      const s = await getSwarm(c, ns, 'reborn');
      return s.status?.version ? s : undefined;
    });
    expect(fresh.metadata.uid).not.toBe(old.metadata.uid);
    const pod = await waitFor(
      'a pod of the new swarm',
      async () => {
        const p = await podOf('reborn');
        return p?.metadata.ownerReferences?.[0] && (p.metadata.ownerReferences[0] as { uid?: string }).uid === fresh.metadata.uid ? p : undefined;
      },
      10_000,
    ).catch(async (e: unknown) => {
      throw new Error(`${String(e)}; status: ${JSON.stringify((await getSwarm(c, ns, 'reborn')).status)}`);
    });
    expect(pod.metadata.name).toBe('reborn-v1-1');
    for (const path of [
      `/api/v1/namespaces/${ns}/serviceaccounts/reborn-coordinator`,
      ...['roles', 'rolebindings'].map((r) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/${r}/reborn-coordinator`),
    ]) {
      const obj = await c.get<{ metadata: { ownerReferences?: Array<{ uid: string }> } }>(path);
      expect(obj.metadata.ownerReferences?.map((o) => o.uid)).toEqual([fresh.metadata.uid]);
    }
  });
});

describe('a V2 coordinator that fails mid-run', () => {
  it('OOM-killed: falls back to a V1 pod that resumes, with the failure as the reason', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'oom', { agents: 8, coordination: { version: 'v2' } }));
    const pod = await waitFor('v2 pod', () => podOf('oom'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    await waitFor('Running', async () => (await getSwarm(c, ns, 'oom')).status?.phase === 'Running');
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'oom', total: 8, intervalMs: 10 });
    for (const index of [0, 1, 2]) pub.onResponse(agentResponse(index));
    await pub.flush();
    await waitFor('progress', async () => (await getSwarm(c, ns, 'oom')).status?.completedAgents === '0-2');
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 137, undefined, 'OOMKilled'));
    const v1 = await waitFor('v1 pod', () => podOf('oom', 2));
    expect(v1.spec.containers[0]!.env).toContainEqual({ name: 'CFN_COMPLETED_AGENTS', value: '0-2' });
    const sw = await waitFor('fallback in status', async () => {
      const s = await getSwarm(c, ns, 'oom');
      return s.status?.fallback ? s : undefined;
    });
    expect(sw.status?.fallback?.reason).toBe('V2 coordinator failed: OOMKilled: exit code 137');
    expect(await op.metrics.registry.getSingleMetricAsString('swarm_fallback_total')).toMatch(/swarm_fallback_total\{reason="oom_killed"\} [1-9]/);
    expect(sw.status).toMatchObject({ version: 'v2', activeVersion: 'v1', agents: { completed: 3 } });
  });
});

describe('a pod creation refused by quota', () => {
  it("is reported as exactly that (Pending, CreateRefused with the API server's message, a Warning event), never a fallback, and retried until it passes", async () => {
    const quota = { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: 'no-pods' }, spec: { hard: { pods: '0' } } };
    // A separate namespace: the quota must not block the other tests' pods.
    const qns = await createNamespace(c, 'swarm-quota');
    const qop = await runOperator({ namespaces: [qns] });
    try {
      await c.create(`/api/v1/namespaces/${qns}/resourcequotas`, quota);
      await new Promise((r) => setTimeout(r, 1500)); // the quota controller computes usage first
      await c.create(swarmPath(qns), swarmManifest(qns, 'blocked', { coordination: { version: 'v2', fallbackTimeoutSeconds: 1 } }));
      const sw = await waitFor('CreateRefused', async () => {
        const s = await getSwarm(c, qns, 'blocked');
        return s.status?.conditions?.find((x) => x.type === 'CoordinatorReady' && x.reason === 'CreateRefused') ? s : undefined;
      });
      expect(sw.status?.conditions?.find((x) => x.type === 'CoordinatorReady')?.message).toMatch(
        /^creating coordinator pod blocked-v2-1 refused: .*exceeded quota: no-pods/,
      );
      expect(sw.status).toMatchObject({ phase: 'Pending', activeVersion: 'v2', coordinatorAttempts: 1 });
      const ev = await waitFor('CreateRefused event', async () =>
        (await events(c, qns)).find((e) => e.involvedObject.name === 'blocked' && e.reason === 'CreateRefused'),
      );
      expect(ev.type).toBe('Warning');
      expect(ev.message).toMatch(/exceeded quota: no-pods/);
      // Past fallbackTimeoutSeconds: still V2, no fallback.
      await new Promise((r) => setTimeout(r, 2000));
      const still = await getSwarm(c, qns, 'blocked');
      expect(still.status?.fallback).toBeUndefined();
      expect(still.status).toMatchObject({ phase: 'Pending', activeVersion: 'v2', coordinatorAttempts: 1 });
      await c.delete(`/api/v1/namespaces/${qns}/resourcequotas/no-pods`);
      await waitFor('pod after the quota is gone', async () => (await listPods(c, qns)).some((p) => p.metadata.name === 'blocked-v2-1') || undefined, 60_000);
      const healed = await waitFor(
        'CreateRefused cleared',
        async () => {
          const s = await getSwarm(c, qns, 'blocked');
          return s.status?.conditions?.find((x) => x.type === 'CoordinatorReady' && x.reason === 'PodStarting') ? s : undefined;
        },
        30_000,
      );
      expect(healed.status?.conditions?.find((x) => x.type === 'CoordinatorReady')?.message).toBe(
        'coordinator pod blocked-v2-1 is starting: waiting to be scheduled',
      );
      expect(healed.status?.fallback).toBeUndefined();
      expect(healed.status?.conditions?.find((x) => x.type === 'Reconciled')).toMatchObject({ status: 'True' });
    } finally {
      await qop.stop();
      await deleteNamespace(c, qns);
    }
  });
});

describe('a coordinator pod that does not run yet is never a fallback', () => {
  it("not scheduled: Pending with the scheduler's message and a Warning event, past fallbackTimeoutSeconds", async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'big', { coordination: { version: 'v2', fallbackTimeoutSeconds: 1 } }));
    const pod = await waitFor('v2 pod', () => podOf('big'));
    const message = '0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.';
    await setPodStatus(c, ns, pod.metadata.name, {
      phase: 'Pending',
      conditions: [
        { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
      ],
    });
    const sw = await waitFor('Unschedulable condition', async () => {
      const s = await getSwarm(c, ns, 'big');
      return s.status?.conditions?.find((x) => x.type === 'CoordinatorReady' && x.reason === 'Unschedulable') ? s : undefined;
    });
    expect(sw.status?.conditions?.find((x) => x.type === 'CoordinatorReady')).toMatchObject({
      status: 'False',
      message: `coordinator pod big-v2-1: ${message}`,
    });
    const ev = await waitFor('Unschedulable event', async () =>
      (await events(c, ns)).find((e) => e.involvedObject.name === 'big' && e.reason === 'Unschedulable'),
    );
    expect(ev).toMatchObject({ type: 'Warning', message: `coordinator pod big-v2-1: ${message}` });
    await new Promise((r) => setTimeout(r, 2500));
    const later = await getSwarm(c, ns, 'big');
    expect(later.status?.fallback).toBeUndefined();
    expect(later.status).toMatchObject({ phase: 'Pending', activeVersion: 'v2', coordinatorAttempts: 1 });
    expect(await podOf('big', 2)).toBeUndefined();
  });

  it("image not pulled: Pending with the kubelet's reason and message", async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'pull', { coordination: { version: 'v2', fallbackTimeoutSeconds: 1 } }));
    const pod = await waitFor('v2 pod', () => podOf('pull'));
    const message = 'Back-off pulling image "registry.invalid/cfn:nope": ErrImagePull: failed to resolve reference';
    await setPodStatus(c, ns, pod.metadata.name, {
      phase: 'Pending',
      containerStatuses: [
        {
          name: 'coordinator',
          ready: false,
          restartCount: 0,
          image: 'registry.invalid/cfn:nope',
          imageID: '',
          state: { waiting: { reason: 'ImagePullBackOff', message } },
        },
      ],
    });
    const sw = await waitFor('ImagePullBackOff condition', async () => {
      const s = await getSwarm(c, ns, 'pull');
      return s.status?.conditions?.find((x) => x.type === 'CoordinatorReady' && x.reason === 'ImagePullBackOff') ? s : undefined;
    });
    expect(sw.status?.conditions?.find((x) => x.type === 'CoordinatorReady')?.message).toBe(`coordinator pod pull-v2-1: ${message}`);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await getSwarm(c, ns, 'pull')).status?.fallback).toBeUndefined();
  });

  it('past startDeadlineSeconds: Failed (StartDeadlineExceeded) with the reason it waited for, no fallback', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'never', { coordination: { version: 'v2', fallbackTimeoutSeconds: 1, startDeadlineSeconds: 3 } }));
    const pod = await waitFor('v2 pod', () => podOf('never'));
    const message = '0/1 nodes are available: 1 Insufficient cpu.';
    await setPodStatus(c, ns, pod.metadata.name, {
      phase: 'Pending',
      conditions: [
        { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
      ],
    });
    const sw = await waitFor(
      'Failed',
      async () => {
        const s = await getSwarm(c, ns, 'never');
        return s.status?.phase === 'Failed' ? s : undefined;
      },
      15_000,
    );
    expect(sw.status?.conditions?.find((x) => x.type === 'Failed')).toMatchObject({
      status: 'True',
      reason: 'StartDeadlineExceeded',
      message: `coordinator pod never-v2-1 did not start within 3s: Unschedulable: ${message}`,
    });
    expect(sw.status?.fallback).toBeUndefined();
    expect(sw.status?.activeVersion).toBe('v2');
    await waitFor('pod deleted', async () => ((await podOf('never')) ? undefined : true));
  });
});

describe('a V2 coordinator lost from outside', () => {
  it('evicted: replaced by a V2 pod that resumes (a replacement, not a fallback)', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'evicted', { agents: 6, coordination: { version: 'v2' } }));
    const pod = await waitFor('v2 pod', () => podOf('evicted'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    await waitFor('Running', async () => (await getSwarm(c, ns, 'evicted')).status?.phase === 'Running');
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'evicted', total: 6, pod: pod.metadata.name, intervalMs: 10 });
    for (const index of [0, 1]) pub.onResponse(agentResponse(index));
    await pub.flush();
    await waitFor('progress', async () => (await getSwarm(c, ns, 'evicted')).status?.completedAgents === '0-1');
    await setPodStatus(c, ns, pod.metadata.name, { ...podTerminated('Failed', 137, undefined, 'Evicted'), message: 'The node was low on resource: memory.' });
    const next = await waitFor('replacement', () => podOf('evicted', 2));
    expect(next.metadata.labels['swarm.cfn.dev/version']).toBe('v2');
    expect(next.spec.containers[0]!.env).toContainEqual({ name: 'CFN_COMPLETED_AGENTS', value: '0-1' });
    const sw = await waitFor('attempt 2 in status', async () => {
      const s = await getSwarm(c, ns, 'evicted');
      return s.status?.coordinatorAttempts === 2 ? s : undefined;
    });
    expect(sw.status).toMatchObject({ version: 'v2', activeVersion: 'v2' });
    expect(sw.status?.fallback).toBeUndefined();
    const ev = await waitFor('CoordinatorLost event', async () =>
      (await events(c, ns)).find((e) => e.involvedObject.name === 'evicted' && e.reason === 'CoordinatorLost'),
    );
    expect(ev.message).toMatch(
      /^Evicted: The node was low on resource: memory\.; starting a replacement that resumes past the agents whose final answer is in$/,
    );
  });
});

describe('a fallback never runs an agent twice', () => {
  it('the V1 pod comes only once the V2 pod is gone, and resumes past the final status the V2 coordinator published', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'handover', { agents: 8, coordination: { version: 'v2', fallbackTimeoutSeconds: 1 } }));
    const pod = await waitFor('v2 pod', () => podOf('handover'));
    // Bound to a node (as the scheduler does): deleting it is then graceful, the
    // pod stays until its kubelet (played here) reports it stopped.
    await c.create(`/api/v1/namespaces/${ns}/pods/${pod.metadata.name}/binding`, {
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name: pod.metadata.name },
      target: { apiVersion: 'v1', kind: 'Node', name: 'node-a' },
    });
    await setPodStatus(c, ns, pod.metadata.name, podRunning(false));
    // Its container runs, never ready, publishes nothing: a startup timeout (V2's own failure).
    const falling = await waitFor(
      'FallingBack',
      async () => {
        const s = await getSwarm(c, ns, 'handover');
        return s.status?.phase === 'FallingBack' ? s : undefined;
      },
      10_000,
    );
    expect(falling.status).toMatchObject({
      activeVersion: 'v2',
      fallback: { from: 'v2', to: 'v1', reason: 'V2 coordinator not ready within 1s of its container starting' },
    });
    const terminating = await waitFor('V2 pod deleted gracefully', async () => {
      const p = (await listPods(c, ns)).find((x) => x.metadata.name === pod.metadata.name);
      return (p?.metadata as { deletionTimestamp?: string } | undefined)?.deletionTimestamp ? p : undefined;
    });
    expect(terminating).toBeDefined();
    // The stopping V2 coordinator publishes what it delivered and which agents it cut short.
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'handover', total: 8, pod: pod.metadata.name, intervalMs: 10 });
    for (const index of [0, 1, 2]) pub.onResponse(agentResponse(index));
    pub.onInterrupted([4, 5]);
    await pub.flush({ status: 'stopped' });
    await new Promise((r) => setTimeout(r, 1500));
    // Still there: no V1 pod beside it.
    expect(await podOf('handover', 2)).toBeUndefined();
    expect((await getSwarm(c, ns, 'handover')).status?.conditions?.find((x) => x.type === 'CoordinatorReady')).toMatchObject({ reason: 'StoppingV2' });
    // The kubelet: container ended, pod removed.
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 143));
    await c.delete(`/api/v1/namespaces/${ns}/pods/${pod.metadata.name}`, { gracePeriodSeconds: 0 });
    const v1 = await waitFor('v1 pod', () => podOf('handover', 2));
    expect(v1.metadata.labels['swarm.cfn.dev/version']).toBe('v1');
    expect(v1.spec.containers[0]!.env).toContainEqual({ name: 'CFN_COMPLETED_AGENTS', value: '0-2' });
    const sw = await getSwarm(c, ns, 'handover');
    expect(sw.status).toMatchObject({ activeVersion: 'v1', completedAgents: '0-2', interruptedAgents: '4-5', rerunAgents: 2 });
  });
});
