// A swarm of several shards, one reconcile at a time (swarm-run.ts and
// shard-run.ts), against a client that records every call in order: each
// shard has its own pod, claim and status entry; a shard's fallback or loss
// touches that shard only; the swarm's status sums the shards; spec.suspend
// creates nothing and stops what runs.
import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../../../operator/k8s/client.js';
import type { ShardStatus } from '../../../operator/api/swarm.js';
import { NOW, NS, reconcileOnce, secs } from '../../helpers/swarm-reconcile.js';

function swarmObject(opts: { status?: Record<string, unknown>; spec?: Record<string, unknown> } = {}): KubeObject {
  return {
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name: 's', namespace: NS, uid: 'uid-s', resourceVersion: '10', generation: 3, finalizers: ['swarm.cfn.dev/cleanup'] },
    spec: { objective: 'o', agents: 9, shards: 3, agent: { command: ['cat'] }, coordination: { version: 'v2' }, ...opts.spec },
    ...(opts.status ? { status: opts.status } : {}),
  };
}

const INDEXES = ['0-2', '3-5', '6-8'];

/** Shard i's entry once its first V2 pod was recorded 20 s ago (and `extra`). */
const entry = (i: number, extra: Partial<ShardStatus> = {}): ShardStatus => ({
  index: i,
  indexes: INDEXES[i]!,
  pod: `s-v2-1-s${i}`,
  version: 'v2',
  phase: 'Pending',
  attempts: 1,
  attemptTime: secs(20_000),
  reason: 'PodCreated',
  message: `coordinator pod s-v2-1-s${i} created`,
  ...extra,
});

/** A sharded swarm whose shards all started (entries overridden by `shards`). */
const started = (shards: Array<Partial<ShardStatus>> = [{}, {}, {}], status: Record<string, unknown> = {}) => ({
  version: 'v2',
  shardCount: 3,
  versionReason: 'spec.coordination.version=v2',
  activeVersion: 'v2',
  phase: 'Pending',
  startTime: secs(20_000),
  topology: 'hybrid',
  shards: shards.map((x, i) => entry(i, x)),
  ...status,
});

function pod(shard: number, status: Record<string, unknown>, attempt = 1, version: 'v1' | 'v2' = 'v2', extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `s-${version}-${attempt}-s${shard}`,
      namespace: NS,
      labels: { 'swarm.cfn.dev/swarm': 's', 'swarm.cfn.dev/version': version, 'swarm.cfn.dev/attempt': String(attempt), 'swarm.cfn.dev/shard': String(shard) },
      annotations: { 'swarm.cfn.dev/created-at': new Date(NOW - 20_000).toISOString() },
      ...extra,
    },
    spec: { nodeName: `n${shard}` },
    status,
  };
}
const ready = {
  phase: 'Running',
  conditions: [{ type: 'Ready', status: 'True' }],
  containerStatuses: [{ name: 'coordinator', state: { running: { startedAt: secs(10_000) } } }],
};
const preflightFailed = {
  phase: 'Failed',
  containerStatuses: [{ name: 'coordinator', state: { terminated: { exitCode: 3, message: 'V2 preflight: /dev/shm is not tmpfs' } } }],
};
const unschedulable = {
  phase: 'Pending',
  conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient cpu.' }],
};
const succeeded = { phase: 'Succeeded', containerStatuses: [{ name: 'coordinator', state: { terminated: { exitCode: 0 } } }] };

describe('a new sharded swarm', () => {
  it('one claim and one pod per shard, named, labelled and spread; one entry per shard; the swarm is hybrid', async () => {
    const r = await reconcileOnce(swarmObject(), []);
    expect(r.status).toMatchObject({
      version: 'v2',
      shardCount: 3,
      topology: 'hybrid',
      phase: 'Pending',
      agents: { total: 9, completed: 0, failed: 0 },
      deliveryRate: 0,
    });
    expect(r.status?.coordinatorPod).toBeUndefined();
    expect(r.status?.shards).toEqual(
      [0, 1, 2].map((i) =>
        expect.objectContaining({ index: i, indexes: INDEXES[i], pod: `s-v2-1-s${i}`, version: 'v2', phase: 'Pending', attempts: 1, reason: 'PodCreated' }),
      ),
    );
    // Intent first, then per shard its claim before its pod.
    // The swarm's coordinator identity once, beside the first pod.
    expect(r.calls.filter((c) => !c.startsWith('get '))).toEqual([
      'status',
      'apply persistentvolumeclaims/s-results-0',
      'create serviceaccounts/s-coordinator',
      'create roles/s-coordinator',
      'create rolebindings/s-coordinator',
      'create pods/s-v2-1-s0',
      'apply persistentvolumeclaims/s-results-1',
      'create pods/s-v2-1-s1',
      'apply persistentvolumeclaims/s-results-2',
      'create pods/s-v2-1-s2',
    ]);
    const pods = r.created.filter((o) => o.kind === 'Pod') as Array<
      KubeObject & {
        metadata: { labels: Record<string, string> };
        spec: {
          topologySpreadConstraints: unknown[];
          containers: Array<{ env: Array<{ name: string; value?: string }> }>;
          volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string } }>;
        };
      }
    >;
    expect(pods.map((p) => p.metadata.labels['swarm.cfn.dev/shard'])).toEqual(['0', '1', '2']);
    expect(pods.map((p) => p.spec.containers[0]!.env.find((e) => e.name === 'CFN_SHARD')?.value)).toEqual(['0', '1', '2']);
    expect(pods.map((p) => p.spec.volumes.find((v) => v.name === 'results')?.persistentVolumeClaim?.claimName)).toEqual([
      's-results-0',
      's-results-1',
      's-results-2',
    ]);
    expect(pods[0]!.spec.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: { 'swarm.cfn.dev/swarm': 's' } },
      },
    ]);
    expect(r.eventLines.filter((e) => e.startsWith('Normal CoordinatorCreated'))).toEqual(
      [0, 1, 2].map((i) => `Normal CoordinatorCreated: shard ${i}: created v2 coordinator pod s-v2-1-s${i}`),
    );
  });

  it('spec.agent.topologySpreadConstraints replaces the default; an empty list means none', async () => {
    const own = [{ maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' }];
    const custom = await reconcileOnce(swarmObject({ spec: { agent: { command: ['cat'], topologySpreadConstraints: own } } }), []);
    expect((custom.created.find((o) => o.kind === 'Pod') as { spec: { topologySpreadConstraints?: unknown } }).spec.topologySpreadConstraints).toEqual(own);
    const none = await reconcileOnce(swarmObject({ spec: { agent: { command: ['cat'], topologySpreadConstraints: [] } } }), []);
    expect((none.created.find((o) => o.kind === 'Pod') as { spec: { topologySpreadConstraints?: unknown } }).spec.topologySpreadConstraints).toBeUndefined();
  });
});

describe('one status from the shards', () => {
  it("a shard the scheduler cannot place: its entry and the swarm's condition say why; the others run", async () => {
    const r = await reconcileOnce(swarmObject({ status: started([{ phase: 'Running', reason: 'PodReady' }, { phase: 'Running', reason: 'PodReady' }, {}]) }), [
      pod(0, ready),
      pod(1, ready),
      pod(2, unschedulable),
    ]);
    expect(r.shard(2)).toMatchObject({
      phase: 'Pending',
      reason: 'Unschedulable',
      message: 'coordinator pod s-v2-1-s2: 0/3 nodes are available: 3 Insufficient cpu.',
    });
    expect(r.status?.phase).toBe('Running');
    expect(r.cond('CoordinatorReady')).toMatchObject({
      status: 'False',
      reason: 'Unschedulable',
      message: '2/3 shards running; shard 2 Pending: coordinator pod s-v2-1-s2: 0/3 nodes are available: 3 Insufficient cpu.',
    });
    expect(r.eventLines).toContain('Warning Unschedulable: shard 2: coordinator pod s-v2-1-s2: 0/3 nodes are available: 3 Insufficient cpu.');
    expect(r.acted).toEqual([]);
  });

  it("every shard ready: Running, CoordinatorReady=True; the figures are the shards' sum", async () => {
    const progress = (i: number, completed: number) => ({
      phase: 'Running' as const,
      reason: 'PodReady',
      agents: { total: 3, completed, failed: 0 },
      completedAgents: completed ? `${i * 3}-${i * 3 + completed - 1}` : '',
    });
    const r = await reconcileOnce(swarmObject({ status: started([progress(0, 3), progress(1, 1), progress(2, 0)]) }), [
      pod(0, ready),
      pod(1, ready),
      pod(2, ready),
    ]);
    expect(r.status).toMatchObject({ phase: 'Running', agents: { total: 9, completed: 4, failed: 0 }, deliveryRate: 44.4, completedAgents: '0-3' });
    expect(r.cond('CoordinatorReady')).toMatchObject({ status: 'True', reason: 'ShardsReady', message: '3/3 shards running' });
    expect(r.shard(1)).toMatchObject({ node: 'n1', pod: 's-v2-1-s1' });
  });

  it('every shard finished: judged by the success policy on the sum', async () => {
    const done = (i: number) => ({
      phase: 'Running' as const,
      reason: 'PodReady',
      agents: { total: 3, completed: 3, failed: 0 },
      completedAgents: INDEXES[i],
      result: { status: 'completed' as const },
    });
    const r = await reconcileOnce(swarmObject({ status: started([done(0), done(1), done(2)]) }), [pod(0, succeeded), pod(1, succeeded), pod(2, succeeded)]);
    expect(r.status).toMatchObject({
      phase: 'Succeeded',
      agents: { total: 9, completed: 9, failed: 0 },
      deliveryRate: 100,
      completedAgents: '0-8',
      result: { status: 'completed' },
    });
    expect(r.cond('Complete')).toMatchObject({ status: 'True', message: '9/9 agents completed, 0 failed: delivery 100% >= 100%' });
    expect(r.status?.shards?.map((e) => e.phase)).toEqual(['Succeeded', 'Succeeded', 'Succeeded']);
  });

  it('a shard whose run failed (invalid tasks) fails the swarm with its reason, once every shard is final', async () => {
    const done = { phase: 'Running' as const, reason: 'PodReady', agents: { total: 3, completed: 3, failed: 0 }, result: { status: 'completed' as const } };
    const bad = { phase: 'Running' as const, reason: 'PodReady', result: { status: 'failed' as const, message: 'invalid tasks: task 4 is not valid UTF-8' } };
    const running = await reconcileOnce(swarmObject({ status: started([done, bad, { phase: 'Running', reason: 'PodReady' }]) }), [
      pod(0, succeeded),
      pod(1, succeeded),
      pod(2, ready),
    ]);
    expect(running.shard(1)).toMatchObject({ phase: 'Failed', reason: 'InvalidTasks' });
    expect(running.status?.phase).toBe('Running');
    const after = await reconcileOnce(
      swarmObject({
        status: started([
          { ...done, phase: 'Succeeded' },
          { ...bad, phase: 'Failed', reason: 'InvalidTasks', message: 'invalid tasks: task 4 is not valid UTF-8' },
          done,
        ]),
      }),
      [pod(0, succeeded), pod(1, succeeded), pod(2, succeeded)],
    );
    expect(after.status?.phase).toBe('Failed');
    expect(after.cond('Failed')).toMatchObject({ reason: 'InvalidTasks', message: 'shard 1: invalid tasks: task 4 is not valid UTF-8' });
  });
});

describe('failures stay local', () => {
  it("a shard whose V2 fails falls back alone: its entry and the swarm's fallback name it, the others are untouched", async () => {
    const r = await reconcileOnce(swarmObject({ status: started([{ phase: 'Running', reason: 'PodReady' }, {}, { phase: 'Running', reason: 'PodReady' }]) }), [
      pod(0, ready),
      pod(1, preflightFailed),
      pod(2, ready),
    ]);
    expect(r.shard(1)).toMatchObject({
      phase: 'FallingBack',
      version: 'v1',
      attempts: 2,
      pod: 's-v1-2-s1',
      fallback: { from: 'v2', to: 'v1', reason: 'V2 preflight: /dev/shm is not tmpfs' },
    });
    expect(r.shard(0)).toMatchObject({ phase: 'Running', version: 'v2', attempts: 1 });
    expect(r.shard(2)).toMatchObject({ phase: 'Running', version: 'v2', attempts: 1 });
    expect(r.status?.fallback).toMatchObject({ from: 'v2', to: 'v1', reason: 'shard 1: V2 preflight: /dev/shm is not tmpfs' });
    expect(r.cond('FallbackActive')).toMatchObject({ status: 'True', message: 'shard 1: V2 preflight: /dev/shm is not tmpfs' });
    expect(r.status?.activeVersion).toBe('v1');
    expect(r.fallbackTotal).toBe(1);
    expect(r.eventLines).toContain('Warning FallbackToV1: shard 1: V2 unavailable (V2 preflight: /dev/shm is not tmpfs), using V1 fallback');
    // Only shard 1's pods are touched: the ended V2 pod goes, the V1 pod comes (with its own claim).
    expect(r.acted.filter((c) => !/ (serviceaccounts|roles|rolebindings)\//.test(c))).toEqual([
      'delete pods/s-v2-1-s1 now',
      'apply persistentvolumeclaims/s-results-1',
      'create pods/s-v1-2-s1',
    ]);
  });

  it('a shard whose pod is lost is replaced alone, says why and from which node, and resumes past its delivered agents', async () => {
    const evicted = { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' };
    const run = { phase: 'Running' as const, reason: 'PodReady' };
    const r = await reconcileOnce(
      swarmObject({ status: started([run, run, { ...run, agents: { total: 3, completed: 1, failed: 0 }, completedAgents: '6' }]) }),
      [pod(0, ready), pod(1, ready), pod(2, evicted)],
    );
    expect(r.shard(2)).toMatchObject({
      attempts: 2,
      pod: 's-v2-2-s2',
      version: 'v2',
      reason: 'CoordinatorLost',
      message: 'Evicted: The node was low on resource: memory. (on node n2); replaced by coordinator pod s-v2-2-s2',
    });
    expect(r.acted).toEqual([
      'delete pods/s-v2-1-s2 now',
      'apply persistentvolumeclaims/s-results-2',
      'create serviceaccounts/s-coordinator',
      'create roles/s-coordinator',
      'create rolebindings/s-coordinator',
      'create pods/s-v2-2-s2',
    ]);
    expect(r.eventLines).toContain(
      'Warning CoordinatorLost: shard 2: Evicted: The node was low on resource: memory. (on node n2); starting a replacement that resumes past the agents whose final answer is in',
    );
    const replacement = r.created.find((o) => o.metadata?.name === 's-v2-2-s2') as {
      spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> };
    };
    expect(replacement.spec.containers[0]!.env).toContainEqual({ name: 'CFN_COMPLETED_AGENTS', value: '6' });
    expect(r.fallbackTotal).toBe(0);
  });
});

describe('a shard on a lost node', () => {
  it('its pod stuck terminating past its deletion deadline: force-deleted and replaced alone', async () => {
    const run = { phase: 'Running' as const, reason: 'PodReady' };
    const stuck = pod(1, ready, 1, 'v2', { deletionTimestamp: secs(61_000 + 30_000) });
    const r = await reconcileOnce(swarmObject({ status: started([run, run, run]) }), [pod(0, ready), stuck, pod(2, ready)]);
    expect(r.acted.filter((c) => !/ (serviceaccounts|roles|rolebindings)\//.test(c))).toEqual([
      'delete pods/s-v2-1-s1 now',
      'apply persistentvolumeclaims/s-results-1',
      'create pods/s-v2-2-s1',
    ]);
    expect(r.shard(1)).toMatchObject({ attempts: 2, reason: 'CoordinatorLost', message: expect.stringContaining('(on node n1)') });
    expect(r.shard(0)).toMatchObject({ attempts: 1, phase: 'Running' });
    expect(r.fallbackTotal).toBe(0);
  });
});

describe('spec.suspend', () => {
  it('a suspended new swarm: nothing created, no version decided, Suspended=True, Pending', async () => {
    const r = await reconcileOnce(swarmObject({ spec: { suspend: true } }), []);
    expect(r.acted).toEqual([]);
    expect(r.status?.version).toBeUndefined();
    expect(r.status?.phase).toBe('Pending');
    expect(r.cond('Suspended')).toMatchObject({ status: 'True', reason: 'Suspended' });
    expect(r.status?.shards?.map((e) => [e.indexes, e.reason])).toEqual(INDEXES.map((x) => [x, 'Suspended']));
  });

  it('suspending running shards stops their pods gracefully; resuming starts new attempts', async () => {
    const run = { phase: 'Running' as const, reason: 'PodReady' };
    const stop = await reconcileOnce(swarmObject({ spec: { suspend: true }, status: started([run, run, run]) }), [pod(0, ready), pod(1, ready), pod(2, ready)]);
    expect(stop.acted).toEqual(['delete pods/s-v2-1-s0', 'delete pods/s-v2-1-s1', 'delete pods/s-v2-1-s2']);
    expect(stop.status?.phase).toBe('Pending');
    expect(stop.cond('Suspended')).toMatchObject({ status: 'True' });
    expect(stop.result).toEqual({ requeueAfterMs: 1000 });
    const suspended = { phase: 'Pending' as const, reason: 'Suspended' };
    const resume = await reconcileOnce(
      swarmObject({
        status: started([suspended, suspended, suspended], {
          conditions: [{ type: 'Suspended', status: 'True', reason: 'Suspended', message: 'x', lastTransitionTime: secs(5000) }],
        }),
      }),
      [],
    );
    expect(resume.acted.filter((c) => c.startsWith('create rolebindings/'))).toHaveLength(1);
    expect(resume.acted.filter((c) => c.startsWith('create pods/'))).toEqual(['create pods/s-v2-2-s0', 'create pods/s-v2-2-s1', 'create pods/s-v2-2-s2']);
    expect(resume.cond('Suspended')).toMatchObject({ status: 'False', reason: 'Resumed' });
    expect(resume.shard(0)).toMatchObject({ attempts: 2, attemptTime: secs(0), reason: 'PodCreated' });
  });

  it('resumed while a stopped pod still terminates: its shard waits for it, then resumes (no loss, no fallback)', async () => {
    const suspended = { phase: 'Pending' as const, reason: 'Suspended' };
    const stopping = pod(1, ready, 1, 'v2', { deletionTimestamp: new Date(NOW + 20_000).toISOString() });
    const status = started([suspended, suspended, suspended]);
    const r = await reconcileOnce(swarmObject({ status }), [stopping]);
    expect(r.acted.filter((c) => c.startsWith('create pods/'))).toEqual(['create pods/s-v2-2-s0', 'create pods/s-v2-2-s2']);
    expect(r.shard(1)).toMatchObject({ attempts: 1, reason: 'Suspended' });
    // Stopped by the suspend: exit 143 while being deleted.
    const ended = pod(1, { phase: 'Failed', containerStatuses: [{ name: 'coordinator', state: { terminated: { exitCode: 143 } } }] }, 1, 'v2', {
      deletionTimestamp: secs(0),
    });
    const later = await reconcileOnce(swarmObject({ status }), [ended]);
    expect(later.acted.filter((c) => / pods\/s-v[12]-[0-9]+-s1\b/.test(c))).toEqual(['delete pods/s-v2-1-s1 now', 'create pods/s-v2-2-s1']);
    expect(later.eventLines.filter((e) => e.includes('shard 1') && !e.includes('ResultsClaim'))).toEqual([
      'Normal CoordinatorResumed: shard 1: created v2 coordinator pod s-v2-2-s1',
    ]);
    expect(later.fallbackTotal).toBe(0);
  });
});
