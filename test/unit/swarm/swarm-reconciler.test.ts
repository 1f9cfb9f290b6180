// The Swarm reconciler's steps, one reconcile at a time, against a client that
// records what it is asked (the real API server: test/integration/operator).
// Each case: a swarm status and its pod as the cache holds them -> the status
// written, the pods created and deleted, the requeue.
import { describe, expect, it } from '@jest/globals';
import { STUCK_TERMINATING_MS } from '../../../operator/swarm/shard-run.js';
import { KubeApiError } from '../../../operator/k8s/errors.js';
import type { KubeObject } from '../../../operator/k8s/client.js';
import { NOW, NS, reconcileOnce, secs } from '../../helpers/swarm-reconcile.js';

const iso = (msAgo: number) => new Date(NOW - msAgo).toISOString();

function swarmObject(status: Record<string, unknown>, coordination: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name: 's', namespace: NS, uid: 'uid-s', resourceVersion: '10', generation: 1, finalizers: ['swarm.cfn.dev/cleanup'] },
    spec: { objective: 'o', agents: 4, agent: { command: ['cat'] }, coordination: { version: 'v2', fallbackTimeoutSeconds: 5, ...coordination } },
    status: {
      version: 'v2',
      versionReason: 'spec',
      activeVersion: 'v2',
      phase: 'Pending',
      coordinatorAttempts: 1,
      coordinatorPod: 's-v2-1',
      startTime: secs(60_000),
      ...status,
    },
  };
}

function pod(
  status: Record<string, unknown>,
  extra: { version?: 'v1' | 'v2'; attempt?: number; nodeName?: string; deletionTimestamp?: string; createdMsAgo?: number } = {},
): KubeObject {
  const version = extra.version ?? 'v2';
  const attempt = extra.attempt ?? 1;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `s-${version}-${attempt}`,
      namespace: NS,
      labels: { 'swarm.cfn.dev/swarm': 's', 'swarm.cfn.dev/version': version, 'swarm.cfn.dev/attempt': String(attempt) },
      annotations: { 'swarm.cfn.dev/created-at': iso(extra.createdMsAgo ?? 10_000) },
      ...(extra.deletionTimestamp ? { deletionTimestamp: extra.deletionTimestamp } : {}),
    },
    spec: extra.nodeName ? { nodeName: extra.nodeName } : {},
    status,
  };
}

const container = (state: Record<string, unknown>) => ({ containerStatuses: [{ name: 'coordinator', state }] });
const runningFor = (ms: number) => ({ phase: 'Running', ...container({ running: { startedAt: secs(ms) } }) });

describe('SwarmReconciler: errors', () => {
  it('a 409 on the status write is retried without a trace in status (no lastError, no older fields written back)', async () => {
    const conflict = new KubeApiError(409, 'Conflict', 'Operation cannot be fulfilled on swarms.swarm.cfn.dev "s": the object has been modified', 'PATCH', '');
    const r = await reconcileOnce(swarmObject({}), [pod(runningFor(1000), { nodeName: 'n1' })], { statusWriteFails: conflict, statusWriteFailures: 1 });
    expect(r.error).toBe(conflict);
    expect(r.status).toBeUndefined();
    expect(r.createdPods).toEqual([]);
  });

  it('another failure is recorded: lastError and Reconciled=False, RetryLater', async () => {
    const boom = new KubeApiError(500, 'InternalError', 'etcd timed out', 'PATCH', '');
    const r = await reconcileOnce(swarmObject({}), [pod(runningFor(1000), { nodeName: 'n1' })], { statusWriteFails: boom, statusWriteFailures: 1 });
    expect(r.error).toBe(boom);
    expect((r.status as { lastError?: string } | undefined)?.lastError).toContain('etcd timed out');
    expect(r.cond('Reconciled')).toMatchObject({ status: 'False', reason: 'RetryLater' });
  });

  it('the error is written onto the live object, never onto the older cached status (its fields are not put back)', async () => {
    const boom = new KubeApiError(500, 'InternalError', 'etcd timed out', 'PATCH', '');
    const cached = swarmObject({});
    const live = swarmObject({ coordinatorAttempts: 2, coordinatorPod: 's-v2-2', phase: 'Running' });
    live.metadata = { ...live.metadata, resourceVersion: '42' };
    const r = await reconcileOnce(cached, [pod(runningFor(1000), { nodeName: 'n1' })], { statusWriteFails: boom, statusWriteFailures: 1, live });
    expect(r.status).toMatchObject({ coordinatorAttempts: 2, coordinatorPod: 's-v2-2', phase: 'Running' });
    expect((r.status as { lastError?: string } | undefined)?.lastError).toContain('etcd timed out');
    expect(r.statusVersion).toBe('42');
  });
});

describe('SwarmReconciler: waiting is not failing', () => {
  it('a V2 pod never scheduled, long past fallbackTimeoutSeconds: Pending, no fallback, requeued at the start deadline', async () => {
    const r = await reconcileOnce(swarmObject({}), [pod({ phase: 'Pending' }, { createdMsAgo: 60_000 })]);
    expect(r.createdPods).toEqual([]);
    expect(r.deleted).toEqual([]);
    expect(r.status?.fallback).toBeUndefined();
    expect(r.result).toEqual({ requeueAfterMs: 600_000 - 60_000 + 50 });
  });

  it("Unschedulable: the scheduler's message in CoordinatorReady and a Warning event, no fallback", async () => {
    const message = '0/1 nodes are available: 1 Insufficient cpu.';
    const r = await reconcileOnce(swarmObject({}), [
      pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }] }, { createdMsAgo: 30_000 }),
    ]);
    expect(r.cond('CoordinatorReady')).toMatchObject({ status: 'False', reason: 'Unschedulable', message: `coordinator pod s-v2-1: ${message}` });
    expect(r.events).toContainEqual({ type: 'Warning', reason: 'Unschedulable', message: `coordinator pod s-v2-1: ${message}` });
    expect(r.status).toMatchObject({ phase: 'Pending', activeVersion: 'v2' });
    expect(r.status?.fallback).toBeUndefined();
    expect(r.fallbacks).toEqual([]);
  });

  it('the same Unschedulable condition again: no second event', async () => {
    const message = '0/1 nodes are available: 1 Insufficient cpu.';
    const conditions = [
      { type: 'CoordinatorReady', status: 'False', reason: 'Unschedulable', message: `coordinator pod s-v2-1: ${message}`, lastTransitionTime: secs(5000) },
    ];
    const r = await reconcileOnce(swarmObject({ conditions }), [
      pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }] }),
    ]);
    expect(r.events.filter((e) => e.reason === 'Unschedulable')).toEqual([]);
  });

  it('past startDeadlineSeconds: Failed with StartDeadlineExceeded and the reason it waited for; the pod is deleted', async () => {
    const r = await reconcileOnce(swarmObject({}, { startDeadlineSeconds: 60 }), [
      pod(
        { phase: 'Pending', ...container({ waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "x"' } }) },
        { nodeName: 'n', createdMsAgo: 61_000 },
      ),
    ]);
    expect(r.status?.phase).toBe('Failed');
    expect(r.cond('Failed')).toMatchObject({
      status: 'True',
      reason: 'StartDeadlineExceeded',
      message: 'coordinator pod s-v2-1 did not start within 60s: ImagePullBackOff: Back-off pulling image "x"',
    });
    expect(r.status?.fallback).toBeUndefined();
    expect(r.deleted).toEqual([{ name: 's-v2-1', grace: 0 }]);
  });
});

describe('SwarmReconciler: the readiness clock starts with the container', () => {
  it('created long ago, running for 2 s of a 5 s limit: no fallback, requeued when the limit is due', async () => {
    const r = await reconcileOnce(swarmObject({}), [pod(runningFor(2000), { nodeName: 'n', createdMsAgo: 120_000 })]);
    expect(r.status?.fallback).toBeUndefined();
    expect(r.createdPods).toEqual([]);
    // startedAt has whole seconds: the clock counts from its latest instant.
    expect(r.result).toEqual({ requeueAfterMs: 5000 - 2000 + 999 + 50 });
  });

  it('running 6 s, never ready: a startup_timeout fallback; the V2 pod is deleted gracefully and V1 waits', async () => {
    const r = await reconcileOnce(swarmObject({}), [pod(runningFor(7000), { nodeName: 'n' })]);
    expect(r.status).toMatchObject({
      phase: 'FallingBack',
      activeVersion: 'v2',
      fallback: { reason: 'V2 coordinator not ready within 5s of its container starting' },
    });
    expect(r.cond('CoordinatorReady')).toMatchObject({ reason: 'StoppingV2' });
    expect(r.deleted).toEqual([{ name: 's-v2-1', grace: undefined }]);
    expect(r.createdPods).toEqual([]);
    expect(r.fallbacks).toEqual([['startup_timeout', 1]]);
    expect(r.events.map((e) => e.reason)).toContain('FallbackToV1');
  });

  it('falling back, the V2 pod still terminating: nothing created, no second delete', async () => {
    const r = await reconcileOnce(swarmObject({ phase: 'FallingBack', fallback: { from: 'v2', to: 'v1', reason: 'x', time: secs(2000) } }), [
      pod(runningFor(9000), { nodeName: 'n', deletionTimestamp: new Date(NOW + 28_000).toISOString() }),
    ]);
    expect(r.createdPods).toEqual([]);
    expect(r.deleted).toEqual([]);
    expect(r.result).toEqual({ requeueAfterMs: 1000 });
  });

  it('falling back, the V2 pod terminated: V1 is created (and the old pod removed)', async () => {
    const r = await reconcileOnce(swarmObject({ phase: 'FallingBack', fallback: { from: 'v2', to: 'v1', reason: 'x', time: secs(2000) } }), [
      pod({ phase: 'Failed', ...container({ terminated: { exitCode: 143 } }) }, { nodeName: 'n', deletionTimestamp: new Date(NOW + 20_000).toISOString() }),
    ]);
    expect(r.createdPods).toEqual(['s-v1-2']);
    expect(r.status).toMatchObject({ activeVersion: 'v1', coordinatorAttempts: 2, phase: 'FallingBack' });
    expect(r.deleted).toEqual([{ name: 's-v2-1', grace: 0 }]);
  });

  it('falling back, the V2 pod gone: V1 is created', async () => {
    const r = await reconcileOnce(swarmObject({ phase: 'FallingBack', fallback: { from: 'v2', to: 'v1', reason: 'x', time: secs(2000) } }), []);
    expect(r.createdPods).toEqual(['s-v1-2']);
  });

  it('falling back, the V2 pod stuck terminating past its deadline (node unreachable): V1 is created, the pod force-deleted', async () => {
    const r = await reconcileOnce(swarmObject({ phase: 'FallingBack', fallback: { from: 'v2', to: 'v1', reason: 'x', time: secs(2000) } }), [
      pod(runningFor(200_000), { nodeName: 'n', deletionTimestamp: new Date(NOW - STUCK_TERMINATING_MS - 1000).toISOString() }),
    ]);
    expect(r.createdPods).toEqual(['s-v1-2']);
    expect(r.deleted).toEqual([{ name: 's-v2-1', grace: 0 }]);
  });
});

describe("SwarmReconciler: V2's own failures fall back, losses from outside are replaced", () => {
  it('preflight failed (exit 3): fallback with its reason, V1 created at once (the pod has ended)', async () => {
    const r = await reconcileOnce(swarmObject({}), [
      pod({ phase: 'Failed', ...container({ terminated: { exitCode: 3, message: '/dev/shm/cfn not writable' } }) }),
    ]);
    expect(r.status?.fallback?.reason).toBe('/dev/shm/cfn not writable');
    expect(r.createdPods).toEqual(['s-v1-2']);
    expect(r.fallbacks).toEqual([['preflight', 1]]);
  });

  it('OOM-killed: fallback, category oom_killed', async () => {
    const r = await reconcileOnce(swarmObject({ phase: 'Running' }), [
      pod({ phase: 'Failed', ...container({ terminated: { exitCode: 137, reason: 'OOMKilled' } }) }, { nodeName: 'n' }),
    ]);
    expect(r.status?.fallback?.reason).toBe('V2 coordinator failed: OOMKilled: exit code 137');
    expect(r.fallbacks).toEqual([['oom_killed', 1]]);
    expect(r.createdPods).toEqual(['s-v1-2']);
  });

  it('evicted: a V2 replacement, no fallback', async () => {
    const r = await reconcileOnce(swarmObject({ phase: 'Running', completedAgents: '0-1' }), [
      pod(
        { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.', ...container({ terminated: { exitCode: 137 } }) },
        { nodeName: 'n' },
      ),
    ]);
    expect(r.status?.fallback).toBeUndefined();
    expect(r.createdPods).toEqual(['s-v2-2']);
    expect(r.status).toMatchObject({ activeVersion: 'v2', coordinatorAttempts: 2 });
    expect(r.events).toContainEqual({
      type: 'Warning',
      reason: 'CoordinatorLost',
      message: 'Evicted: The node was low on resource: memory. (on node n); starting a replacement that resumes past the agents whose final answer is in',
    });
    expect(r.fallbacks).toEqual([]);
  });

  it('deleted by someone, still terminating: waited for, nothing created', async () => {
    const r = await reconcileOnce(swarmObject({ phase: 'Running' }), [
      pod(runningFor(60_000), { nodeName: 'n', deletionTimestamp: new Date(NOW + 25_000).toISOString() }),
    ]);
    expect(r.createdPods).toEqual([]);
    expect(r.cond('CoordinatorReady')).toMatchObject({ reason: 'PodTerminating' });
  });

  it('gone after it ran: a V2 replacement, no fallback', async () => {
    const conditions = [{ type: 'CoordinatorReady', status: 'True', reason: 'PodReady', message: 'ready', lastTransitionTime: secs(30_000) }];
    const r = await reconcileOnce(swarmObject({ phase: 'Running', conditions }), []);
    expect(r.createdPods).toEqual(['s-v2-2']);
    expect(r.status?.fallback).toBeUndefined();
  });
});

describe('SwarmReconciler: the results claim', () => {
  const CLAIM = `/api/v1/namespaces/${NS}/persistentvolumeclaims/s-results`;
  const first = () => swarmObject({ coordinatorAttempts: 0, coordinatorPod: undefined, conditions: undefined });

  it('a new swarm: the claim is applied before its first pod, an event says so', async () => {
    const r = await reconcileOnce(first(), []);
    expect(r.writes.filter((w) => !w.includes('/rbac.') && !w.includes('/serviceaccounts'))).toEqual([
      `apply ${CLAIM}`,
      `create /api/v1/namespaces/${NS}/pods`,
    ]);
    expect(r.createdPods).toEqual(['s-v2-1']);
    expect(r.events).toContainEqual({ type: 'Normal', reason: 'ResultsClaimCreated', message: 'created results claim s-results (1Gi)' });
  });

  it('its own claim exists: the pod is created, the claim left as it is', async () => {
    const r = await reconcileOnce(first(), [], {
      objects: { [CLAIM]: { metadata: { name: 's-results', ownerReferences: [{ kind: 'Swarm', name: 's', uid: 'uid-s', controller: true }] } } },
    });
    expect(r.writes.filter((w) => w.startsWith('apply'))).toEqual([]);
    expect(r.createdPods).toEqual(['s-v2-1']);
  });

  it('a same-named claim being deleted: no pod, CoordinatorReady=False ResultsClaimPending with why, a Warning, looked at again soon', async () => {
    const r = await reconcileOnce(first(), [], { objects: { [CLAIM]: { metadata: { name: 's-results', deletionTimestamp: secs(1000) } } } });
    expect(r.createdPods).toEqual([]);
    const message = 'results claim s-results is being deleted; a new one is created once it is gone';
    expect(r.cond('CoordinatorReady')).toMatchObject({ status: 'False', reason: 'ResultsClaimPending', message });
    expect(r.status?.phase).toBe('Pending');
    expect(r.events).toContainEqual({ type: 'Warning', reason: 'ResultsClaimPending', message });
    expect(r.result).toEqual({ requeueAfterMs: 2000 });
  });

  it("held by its claim past startDeadlineSeconds: Failed with StartDeadlineExceeded and the claim's reason", async () => {
    const sw = swarmObject({ coordinatorAttempts: 0, coordinatorPod: undefined, startTime: secs(4_000_000) });
    const r = await reconcileOnce(sw, [], { objects: { [CLAIM]: { metadata: { name: 's-results', deletionTimestamp: secs(1000) } } } });
    expect(r.status?.phase).toBe('Failed');
    expect(r.cond('Failed')).toMatchObject({ reason: 'StartDeadlineExceeded', message: expect.stringContaining('results claim s-results is being deleted') });
  });

  it('a replacement held back before: created once the claim allows (not counted as another loss)', async () => {
    const conditions = [{ type: 'CoordinatorReady', status: 'False', reason: 'ResultsClaimPending', message: 'x', lastTransitionTime: secs(5000) }];
    const r = await reconcileOnce(swarmObject({ coordinatorAttempts: 2, coordinatorPod: 's-v2-2', conditions, coordinatorAttemptTime: secs(10_000) }), [], {
      objects: { [CLAIM]: { metadata: { name: 's-results', ownerReferences: [{ kind: 'Swarm', name: 's', uid: 'uid-s', controller: true }] } } },
    });
    expect(r.createdPods).toEqual(['s-v2-3']);
    expect(r.events.filter((e) => e.reason === 'CoordinatorLost')).toEqual([]);
  });

  it("an unschedulable pod whose claim does not bind: the claim's own words beside the scheduler's", async () => {
    const message =
      '0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.';
    const warning = {
      type: 'Warning',
      reason: 'FailedBinding',
      message: 'no persistent volumes available for this claim and no storage class is set',
      lastTimestamp: secs(2000),
    };
    const r = await reconcileOnce(
      swarmObject({}),
      [pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }] })],
      {
        objects: { [CLAIM]: { metadata: { name: 's-results' }, status: { phase: 'Pending' } }, [`/api/v1/namespaces/${NS}/events`]: { items: [warning] } },
      },
    );
    expect(r.cond('CoordinatorReady')).toMatchObject({
      reason: 'Unschedulable',
      message: `coordinator pod s-v2-1: ${message}; results claim s-results is Pending: FailedBinding: no persistent volumes available for this claim and no storage class is set`,
    });
    expect(r.fallbacks).toEqual([]);
  });

  it('a claim that holds the pod before the PV controller has said why: looked at again within seconds, not at the start deadline', async () => {
    const message = '0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.';
    const held = { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }] };
    const r = await reconcileOnce(swarmObject({}), [pod(held)], {
      objects: { [CLAIM]: { metadata: { name: 's-results' }, status: { phase: 'Pending' } }, [`/api/v1/namespaces/${NS}/events`]: { items: [] } },
    });
    expect(r.cond('CoordinatorReady')?.message).toBe(`coordinator pod s-v2-1: ${message}; results claim s-results is Pending`);
    expect(r.result).toEqual({ requeueAfterMs: 5000 });
    const cpu = {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient cpu.' }],
    };
    const later = await reconcileOnce(swarmObject({}), [pod(cpu)]);
    expect((later.result as { requeueAfterMs: number }).requeueAfterMs).toBeGreaterThan(60_000);
  });

  it("unschedulable for another reason (cpu): the scheduler's message alone, even while the claim waits for its first consumer", async () => {
    const message = '0/1 nodes are available: 1 Insufficient cpu.';
    const waiting = {
      type: 'Normal',
      reason: 'WaitForFirstConsumer',
      message: 'waiting for first consumer to be created before binding',
      lastTimestamp: secs(2000),
    };
    const r = await reconcileOnce(
      swarmObject({}),
      [pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }] })],
      {
        objects: { [CLAIM]: { metadata: { name: 's-results' }, status: { phase: 'Pending' } }, [`/api/v1/namespaces/${NS}/events`]: { items: [waiting] } },
      },
    );
    expect(r.cond('CoordinatorReady')).toMatchObject({ reason: 'Unschedulable', message: `coordinator pod s-v2-1: ${message}` });
  });
});

describe('SwarmReconciler: results', () => {
  const results = { type: 'persistentVolumeClaim', location: 'pvc://s-results/team/s/uid-s/', stored: 3, bytes: 900, pending: 1 };
  const ready = () =>
    pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }], ...container({ running: { startedAt: secs(5000) } }) }, { nodeName: 'n' });

  it('a sink that fails (status.results.lastError): ResultsStored False with the error; True again once it stores', async () => {
    const failing = await reconcileOnce(swarmObject({ phase: 'Running', results: { ...results, lastError: 'ENOSPC: no space left on device, write' } }), [
      ready(),
    ]);
    expect(failing.cond('ResultsStored')).toMatchObject({
      status: 'False',
      reason: 'StoreFailing',
      message: 'storing results at pvc://s-results/team/s/uid-s/ fails: ENOSPC: no space left on device, write',
    });
    const ok = await reconcileOnce(swarmObject({ phase: 'Running', results, conditions: failing.status?.conditions }), [ready()]);
    expect(ok.cond('ResultsStored')).toMatchObject({ status: 'True', reason: 'Stored', message: 'results are stored at pvc://s-results/team/s/uid-s/' });
  });

  it('no results published yet: no ResultsStored condition', async () => {
    const r = await reconcileOnce(swarmObject({ phase: 'Running' }), [ready()]);
    expect(r.cond('ResultsStored')).toBeUndefined();
  });

  it('the run ended because results could not be stored: Failed, ResultsNotStored, with the count and the error', async () => {
    const message = '3 results could not be stored: ENOSPC: no space left on device, write';
    const r = await reconcileOnce(
      swarmObject({
        phase: 'Running',
        results: { ...results, pending: 3, lastError: 'ENOSPC: no space left on device, write' },
        result: { status: 'failed', message },
      }),
      [pod({ phase: 'Succeeded', ...container({ terminated: { exitCode: 0 } }) }, { nodeName: 'n' })],
    );
    expect(r.status?.phase).toBe('Failed');
    expect(r.cond('Failed')).toMatchObject({ status: 'True', reason: 'ResultsNotStored', message });
    expect(r.cond('ResultsStored')).toMatchObject({ status: 'False', reason: 'StoreFailing' });
  });
});
