// The swarm metrics count decisions that landed: a reconcile whose status
// write fails (a 409 from a stale cache) is retried, and the retry must not
// count the same completion, fallback or routing a second time.
import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { KubeApiError } from '../../../operator/k8s/errors.js';
import { createOperatorMetrics } from '../../../operator/observability/metrics.js';
import { SwarmReconciler } from '../../../operator/swarm/swarm-reconciler.js';
import type { KubeClient, KubeObject } from '../../../operator/k8s/client.js';
import type { EventRecorder } from '../../../operator/k8s/events.js';
import type { VersionPolicy } from '../../../operator/coordination/version/decide-version.js';

const NS = 'team';

function swarmObject(name: string, status: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name, namespace: NS, uid: `uid-${name}`, resourceVersion: '10', generation: 1, finalizers: ['swarm.cfn.dev/cleanup'] },
    spec: { objective: 'o', agents: 4, agent: { command: ['cat'] }, coordination: { version: 'v2' } },
    status,
  };
}

function pod(name: string, version: 'v1' | 'v2', status: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: NS,
      labels: { 'swarm.cfn.dev/version': version, 'swarm.cfn.dev/attempt': '1' },
      annotations: { 'swarm.cfn.dev/created-at': new Date().toISOString() },
    },
    status,
  };
}

/** A client whose first status write answers 409 Conflict; everything else succeeds. */
function conflictingOnce() {
  let statusWrites = 0;
  const fake = {
    statusWrites: () => statusWrites,
    apply: async (path: string, obj: KubeObject, opts: { subresource?: string }) => {
      if (opts.subresource === 'status' && statusWrites++ === 0) {
        throw new KubeApiError(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again', 'PATCH', path);
      }
      return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(20 + statusWrites) } };
    },
    create: async (_path: string, obj: KubeObject) => obj,
    mergePatch: async (_path: string, patch: KubeObject) => patch,
    delete: async () => ({}),
    get: async () => ({}),
  };
  return fake;
}

function reconcilerFor(swarm: KubeObject, pods: KubeObject[], versionPolicy: VersionPolicy = { defaultVersion: 'v2' }) {
  const client = conflictingOnce();
  const metrics = createOperatorMetrics({ defaultMetrics: false });
  const reconciler = new SwarmReconciler({
    client: client as unknown as KubeClient,
    getSwarm: () => swarm,
    listPods: () => pods,
    recorder: { record: async () => undefined } as unknown as EventRecorder,
    logger: pino({ level: 'silent' }),
    metrics,
    image: 'img',
    versionPolicy,
  });
  return { client, metrics, reconciler };
}

/** The reconcile as the controller runs it: the conflict fails the first, the retry lands. */
async function reconcileWithRetry(reconciler: SwarmReconciler, key: string) {
  await expect(reconciler.reconcile(key)).rejects.toThrow(/Conflict|modified/);
  await reconciler.reconcile(key);
}

const running = { version: 'v2', versionReason: 'spec', activeVersion: 'v2', phase: 'Running', coordinatorAttempts: 1, coordinatorPod: 's-v2-1' };

describe('swarm metrics across a status write conflict', () => {
  it('regression: swarm_coordination_seconds observed a completion twice when its status write conflicted', async () => {
    const sw = swarmObject('s', { ...running, coordinationTimeMs: 1500, agents: { total: 4, completed: 4, failed: 0 }, deliveryRate: 100 });
    const { client, metrics, reconciler } = reconcilerFor(sw, [pod('s-v2-1', 'v2', { phase: 'Succeeded' })]);
    await reconcileWithRetry(reconciler, `${NS}/s`);
    expect(client.statusWrites()).toBeGreaterThanOrEqual(2);
    const h = (await metrics.swarmCoordinationSeconds.get()).values;
    expect(h.find((v) => v.metricName === 'swarm_coordination_seconds_count' && v.labels.version === 'v2')?.value).toBe(1);
    expect(h.find((v) => v.metricName === 'swarm_coordination_seconds_sum' && v.labels.version === 'v2')?.value).toBe(1.5);
  });

  it('regression: swarm_fallback_total counted a fallback twice when its status write conflicted', async () => {
    const sw = swarmObject('f', { ...running, phase: 'Pending', coordinatorPod: 'f-v2-1' });
    const failed = pod('f-v2-1', 'v2', {
      phase: 'Failed',
      containerStatuses: [{ name: 'coordinator', state: { terminated: { exitCode: 3, message: '/dev/shm/cfn not writable' } } }],
    });
    const { metrics, reconciler } = reconcilerFor(sw, [failed]);
    await reconcileWithRetry(reconciler, `${NS}/f`);
    expect((await metrics.swarmFallbackTotal.get()).values).toEqual([{ labels: { reason: 'preflight' }, value: 1 }]);
  });

  it('regression: rollout_routed_total counted a routing twice when its status write conflicted', async () => {
    const sw = swarmObject('r', {});
    (sw.spec as { coordination: { version: string } }).coordination.version = 'auto';
    // A policy routes every auto Swarm (the RolloutRouter's answer, stubbed).
    const { metrics, reconciler } = reconcilerFor(sw, [], {
      defaultVersion: 'v2',
      rollout: () => ({ version: 'v2', reason: 'RolloutPolicy p: bucket 3 < 50%', rollout: { policy: 'p', bucket: 3, percentage: 50 } }),
    });
    await reconcileWithRetry(reconciler, `${NS}/r`);
    expect((await metrics.rolloutRoutedTotal.get()).values).toEqual([{ labels: { policy: `${NS}/p`, version: 'v2' }, value: 1 }]);
  });
});
