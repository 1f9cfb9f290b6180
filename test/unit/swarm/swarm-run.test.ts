// The SwarmRun state machine (swarm-reconciler.ts), one reconcile at a time,
// against a client that records every call in order (swarm-reconciler.test.ts
// covers waiting, the readiness clock and fallbacks; test/integration/operator
// runs it on a real API server). Its shape: decide, write the intent to
// status, then act; so nothing is created, deleted or counted unless the
// status write landed, and a recorded intent not yet acted on is acted on
// again (the same attempt), never doubled.
import { describe, expect, it } from '@jest/globals';
import { KubeApiError } from '../../../operator/k8s/errors.js';
import { MAX_COORDINATOR_ATTEMPTS } from '../../../operator/swarm/shard-run.js';
import type { KubeObject } from '../../../operator/k8s/client.js';
import type { VersionPolicy } from '../../../operator/coordination/version/decide-version.js';
import { NOW, NS, reconcileOnce, secs } from '../../helpers/swarm-reconcile.js';

function swarmObject(opts: { status?: Record<string, unknown>; spec?: Record<string, unknown>; finalizers?: string[] } = {}): KubeObject {
  return {
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name: 's', namespace: NS, uid: 'uid-s', resourceVersion: '10', generation: 3, finalizers: opts.finalizers ?? ['swarm.cfn.dev/cleanup'] },
    spec: { objective: 'o', agents: 4, agent: { command: ['cat'] }, coordination: { version: 'v2' }, ...opts.spec },
    ...(opts.status ? { status: opts.status } : {}),
  };
}

/** A swarm whose first V2 pod was recorded and created 20 s ago. */
const started = (status: Record<string, unknown> = {}) => ({
  version: 'v2',
  versionReason: 'spec.coordination.version=v2',
  activeVersion: 'v2',
  phase: 'Pending',
  coordinatorAttempts: 1,
  coordinatorPod: 's-v2-1',
  startTime: secs(20_000),
  coordinatorAttemptTime: secs(20_000),
  ...status,
});

function pod(status: Record<string, unknown>, attempt = 1, version: 'v1' | 'v2' = 'v2'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `s-${version}-${attempt}`,
      namespace: NS,
      labels: { 'swarm.cfn.dev/swarm': 's', 'swarm.cfn.dev/version': version, 'swarm.cfn.dev/attempt': String(attempt) },
      annotations: { 'swarm.cfn.dev/created-at': new Date(NOW - 20_000).toISOString() },
    },
    spec: { nodeName: 'n1' },
    status,
  };
}
const ready = {
  phase: 'Running',
  conditions: [{ type: 'Ready', status: 'True' }],
  containerStatuses: [{ name: 'coordinator', state: { running: { startedAt: secs(10_000) } } }],
};

describe('SwarmRun: a new Swarm', () => {
  it('decides the version once, writes it with the first attempt to status, then creates that pod', async () => {
    const r = await reconcileOnce(swarmObject(), []);
    expect(r.error).toBeUndefined();
    expect(r.status).toMatchObject({
      version: 'v2',
      versionReason: 'spec.coordination.version=v2',
      activeVersion: 'v2',
      topology: 'flat',
      phase: 'Pending',
      coordinatorAttempts: 1,
      coordinatorPod: 's-v2-1',
      observedGeneration: 3,
    });
    expect(r.cond('CoordinatorReady')).toMatchObject({ status: 'False', reason: 'PodCreated' });
    // The intent is written first; the pod follows it.
    const statusAt = r.calls.indexOf('status');
    const podAt = r.calls.indexOf('create pods/s-v2-1');
    expect(statusAt).toBeGreaterThanOrEqual(0);
    expect(podAt).toBeGreaterThan(statusAt);
    expect(r.calls.filter((c) => c.startsWith('create pods/'))).toEqual(['create pods/s-v2-1']);
    // Its results claim too, after the status write and before the pod that mounts it.
    const claimAt = r.calls.indexOf('apply persistentvolumeclaims/s-results');
    expect(claimAt).toBeGreaterThan(statusAt);
    expect(podAt).toBeGreaterThan(claimAt);
    expect(r.eventReasons).toEqual(['Normal VersionSelected', 'Normal ResultsClaimCreated', 'Normal CoordinatorCreated']);
  });

  it('a status write that fails creates nothing and counts nothing: the retry decides again', async () => {
    const policy: VersionPolicy = {
      defaultVersion: 'v1',
      rollout: () => ({ version: 'v2', reason: 'RolloutPolicy p routed', rollout: { policy: 'p', bucket: 1, percentage: 10 } }),
    };
    const spec = { coordination: { version: 'auto' } };
    const failed = await reconcileOnce(swarmObject({ spec }), [], {
      statusWriteFails: new KubeApiError(409, 'Conflict', 'stale', 'PATCH', '/x'),
      versionPolicy: policy,
    });
    expect(failed.error).toBeInstanceOf(KubeApiError);
    // Reads only (is its results claim there?): nothing written.
    expect(failed.calls.filter((c) => !c.startsWith('get '))).toEqual([]);
    expect(failed.routed).toBe(0);
    const ok = await reconcileOnce(swarmObject({ spec }), [], { versionPolicy: policy });
    expect(ok.status).toMatchObject({ version: 'v2', versionReason: 'RolloutPolicy p routed', rollout: { policy: 'p' } });
    expect(ok.routed).toBe(1);
    expect(ok.calls).toContain('create pods/s-v2-1');
  });

  it('adds the finalizer beside the first actions, preconditioned on the resourceVersion it wrote', async () => {
    const r = await reconcileOnce(swarmObject({ finalizers: [] }), []);
    expect(r.calls).toContain('finalizer swarm.cfn.dev/cleanup @11');
    expect(r.calls.indexOf('finalizer swarm.cfn.dev/cleanup @11')).toBeGreaterThan(r.calls.indexOf('status'));
  });

  it('auto topology follows the agent count (flat up to 300, hybrid above)', async () => {
    expect((await reconcileOnce(swarmObject({ spec: { agents: 300 } }), [])).status?.topology).toBe('flat');
    expect((await reconcileOnce(swarmObject({ spec: { agents: 301 } }), [])).status?.topology).toBe('hybrid');
  });
});

describe('SwarmRun: an intent recorded, acted on or not', () => {
  it('recorded but the pod never seen (the creation did not happen): the same attempt is created again, not a new one', async () => {
    const conditions = [{ type: 'CoordinatorReady', status: 'False', reason: 'PodCreated', message: 'created', lastTransitionTime: secs(20_000) }];
    const r = await reconcileOnce(swarmObject({ status: started({ conditions }) }), []);
    expect(r.calls).toContain('get pods/s-v2-1');
    expect(r.calls.filter((c) => c.startsWith('create pods/'))).toEqual(['create pods/s-v2-1']);
    expect(r.status).toMatchObject({ coordinatorAttempts: 1, coordinatorPod: 's-v2-1' });
    expect(r.calls.indexOf('create pods/s-v2-1')).toBeGreaterThan(r.calls.indexOf('status'));
  });

  it('a pod of a later attempt than status says (its status write was lost) is adopted, not doubled', async () => {
    const r = await reconcileOnce(swarmObject({ status: started() }), [pod(ready, 2)]);
    expect(r.status).toMatchObject({ coordinatorAttempts: 2, coordinatorPod: 's-v2-2', phase: 'Running' });
    expect(r.calls.filter((c) => c.startsWith('create '))).toEqual([]);
  });

  it('a ready pod: Running, CoordinatorReady=True', async () => {
    const r = await reconcileOnce(swarmObject({ status: started() }), [pod(ready)]);
    expect(r.status?.phase).toBe('Running');
    expect(r.cond('CoordinatorReady')).toMatchObject({ status: 'True', reason: 'PodReady' });
    expect(r.calls).toEqual(['status']);
  });
});

describe('SwarmRun: replacements are bounded', () => {
  const gone = (attempts: number) => started({ phase: 'Running', coordinatorAttempts: attempts, coordinatorPod: `s-v2-${attempts}` });

  it(`a lost coordinator below ${MAX_COORDINATOR_ATTEMPTS} attempts is replaced by the next attempt, after the status write`, async () => {
    const r = await reconcileOnce(swarmObject({ status: gone(2) }), []);
    expect(r.status).toMatchObject({ coordinatorAttempts: 3, coordinatorPod: 's-v2-3', activeVersion: 'v2', phase: 'Pending' });
    expect(r.calls.indexOf('create pods/s-v2-3')).toBeGreaterThan(r.calls.indexOf('status'));
    expect(r.eventReasons).toContain('Warning CoordinatorLost');
  });

  it(`at ${MAX_COORDINATOR_ATTEMPTS} attempts the swarm fails with CoordinatorLost and nothing is created`, async () => {
    const r = await reconcileOnce(swarmObject({ status: gone(MAX_COORDINATOR_ATTEMPTS) }), []);
    expect(r.status?.phase).toBe('Failed');
    expect(r.cond('Failed')).toMatchObject({ status: 'True', reason: 'CoordinatorLost' });
    expect(r.cond('Failed')?.message).toContain(`coordinator lost ${MAX_COORDINATOR_ATTEMPTS} times`);
    expect(r.calls.filter((c) => c.startsWith('create '))).toEqual([]);
  });
});

describe('SwarmRun: finishing', () => {
  const succeeded = pod({ phase: 'Succeeded', containerStatuses: [{ name: 'coordinator', state: { terminated: { exitCode: 0 } } }] });

  it('a finished coordinator whose completed agents meet minDeliveryRate: Succeeded, Complete, completionTime', async () => {
    const r = await reconcileOnce(
      swarmObject({ status: started({ phase: 'Running', agents: { total: 4, completed: 4, failed: 0 }, result: { status: 'completed' } }) }),
      [succeeded],
    );
    expect(r.status).toMatchObject({ phase: 'Succeeded', completionTime: secs(0) });
    expect(r.cond('Complete')).toMatchObject({ status: 'True', reason: 'Completed' });
  });

  it('below minDeliveryRate: Failed, DeliveryBelowSuccessPolicy with the figures', async () => {
    const r = await reconcileOnce(
      swarmObject({ status: started({ phase: 'Running', agents: { total: 4, completed: 3, failed: 1 }, result: { status: 'completed' } }) }),
      [succeeded],
    );
    expect(r.status?.phase).toBe('Failed');
    expect(r.cond('Failed')).toMatchObject({ reason: 'DeliveryBelowSuccessPolicy' });
    expect(r.cond('Failed')?.message).toContain('< 100%');
    const lenient = await reconcileOnce(
      swarmObject({
        spec: { successPolicy: { minDeliveryRate: 75 } },
        status: started({ phase: 'Running', agents: { total: 4, completed: 3, failed: 1 }, result: { status: 'completed' } }),
      }),
      [succeeded],
    );
    expect(lenient.status?.phase).toBe('Succeeded');
  });

  it('a run that timed out: Failed, DeadlineExceeded', async () => {
    const r = await reconcileOnce(
      swarmObject({
        status: started({ phase: 'Running', agents: { total: 4, completed: 4, failed: 0 }, result: { status: 'timeout', message: 'deadline of 60s passed' } }),
      }),
      [succeeded],
    );
    expect(r.cond('Failed')).toMatchObject({ reason: 'DeadlineExceeded', message: 'deadline of 60s passed' });
  });

  it('a finished swarm only waits for its TTL, then is deleted', async () => {
    const done = (msAgo: number) =>
      swarmObject({ spec: { ttlSecondsAfterFinished: 60 }, status: started({ phase: 'Succeeded', completionTime: secs(msAgo), observedGeneration: 3 }) });
    const waiting = await reconcileOnce(done(20_000), []);
    expect(waiting.result).toEqual({ requeueAfterMs: 40_000 });
    expect(waiting.calls.filter((c) => c.startsWith('delete') || c.startsWith('create'))).toEqual([]);
    const expired = await reconcileOnce(done(61_000), []);
    expect(expired.calls).toContain('delete swarms/s');
    expect(expired.eventReasons).toContain('Normal TTLExpired');
  });
});
