// What `kubectl swarm` shows, from objects as the API server returns them
// (the commands against a real API server: test/integration/gitops/kubectl-swarm.test.ts).
import { describe, expect, it } from '@jest/globals';
import { eventViews, formatSwarm, healthOf, podViews, swarmView } from '../../../../operator/cli/plugin/object-views.js';
import { swarm as swarmSchema } from '../../../../operator/api/swarm.js';

const cond = (type: string, status: 'True' | 'False', reason: string, message: string) => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: '2026-12-04T10:00:00Z',
});

describe('healthOf: the kstatus reading', () => {
  it('deletion first, then an unobserved generation, then Stalled, Reconciling, Ready', () => {
    expect(healthOf({ generation: 2, deletionTimestamp: 'T' }, { observedGeneration: 2 }).state).toBe('Terminating');
    expect(healthOf({ generation: 2 }, { observedGeneration: 1, conditions: [cond('Ready', 'True', 'Stable', 'x')] })).toMatchObject({
      state: 'NotObserved',
      message: 'generation 2 not observed by the operator yet (observed: 1)',
    });
    expect(
      healthOf({ generation: 1 }, { observedGeneration: 1, conditions: [cond('Ready', 'False', 'RunFailed', 'm'), cond('Stalled', 'True', 'RunFailed', 'm')] }),
    ).toEqual({ state: 'Stalled', reason: 'RunFailed', message: 'm' });
    expect(
      healthOf({ generation: 1 }, { observedGeneration: 1, conditions: [cond('Ready', 'False', 'Running', 'r'), cond('Reconciling', 'True', 'Running', 'r')] })
        .state,
    ).toBe('Reconciling');
    expect(healthOf({ generation: 1 }, { observedGeneration: 1, conditions: [cond('Ready', 'True', 'Succeeded', 'ok')] }).state).toBe('Ready');
  });
});

it('events: the newest five, oldest first, whatever field carries their time', () => {
  const ev = (i: number) => ({
    metadata: { creationTimestamp: `2026-12-04T10:00:0${i}Z` },
    type: 'Normal',
    reason: `R${i}`,
    message: 'm',
    ...(i % 2 ? { lastTimestamp: `2026-12-04T10:00:0${i}Z` } : { eventTime: `2026-12-04T10:00:0${i}.000000Z` }),
  });
  expect(eventViews([ev(6), ev(1), ev(3), ev(2), ev(5), ev(4), 'not an event']).map((e) => e.reason)).toEqual(['R2', 'R3', 'R4', 'R5', 'R6']);
});

it('pods: by attempt, with the reason a pod waits or ended', () => {
  const pods = podViews([
    {
      metadata: { name: 's-v1-2', labels: { 'swarm.cfn.dev/version': 'v1', 'swarm.cfn.dev/attempt': '2' } },
      status: { phase: 'Pending', containerStatuses: [{ state: { waiting: { reason: 'ImagePullBackOff' } } }] },
    },
    {
      metadata: { name: 's-v2-1', labels: { 'swarm.cfn.dev/version': 'v2', 'swarm.cfn.dev/attempt': '1' } },
      spec: { nodeName: 'n1' },
      status: { phase: 'Failed', containerStatuses: [{ state: { terminated: { reason: 'Error', exitCode: 3 } } }] },
    },
  ]);
  expect(pods).toEqual([
    { name: 's-v2-1', version: 'v2', attempt: 1, phase: 'Failed', ready: false, node: 'n1', reason: 'Error' },
    { name: 's-v1-2', version: 'v1', attempt: 2, phase: 'Pending', ready: false, node: '', reason: 'ImagePullBackOff' },
  ]);
});

it('formatSwarm: a person reads the whole story of a swarm that fell back', () => {
  const s = swarmSchema.parse({
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name: 'lint', namespace: 'team-a', generation: 1 },
    spec: { objective: 'x', agents: 500, agent: { command: ['a'] } },
    status: {
      observedGeneration: 1,
      phase: 'Succeeded',
      version: 'v2',
      versionReason: 'RolloutPolicy p at 10%: bucket 3 < 10',
      activeVersion: 'v1',
      topology: 'hybrid',
      agents: { total: 500, completed: 489, failed: 11 },
      deliveryRate: 97.8,
      fallback: { from: 'v2', to: 'v1', reason: 'V2 coordinator lost mid-run: OOMKilled', time: '2026-12-04T10:01:00Z' },
      fallbackHistory: [{ from: 'v2', to: 'v1', reason: 'V2 coordinator lost mid-run: OOMKilled', time: '2026-12-04T10:01:00Z' }],
      startTime: '2026-12-04T10:00:00Z',
      completionTime: '2026-12-04T10:05:00Z',
      conditions: [cond('Ready', 'True', 'Succeeded', '500/500 agents done (489 completed, 11 failed), delivery 97.8%')],
    },
  });
  expect(formatSwarm(swarmView(s, [], []), new Date('2026-12-04T10:06:00Z'))).toBe(
    [
      'Name:      team-a/lint',
      'Phase:     Succeeded',
      'Health:    Ready (Succeeded): 500/500 agents done (489 completed, 11 failed), delivery 97.8%',
      'Version:   v1 (decided v2): RolloutPolicy p at 10%: bucket 3 < 10',
      'Topology:  hybrid',
      'Agents:    500/500 done: 489 completed, 11 failed',
      'Delivery:  97.8%',
      'Fallback:  v2 -> v1 5m0s ago: V2 coordinator lost mid-run: OOMKilled',
      'Started:   2026-12-04T10:00:00Z (6m0s ago)',
      'Finished:  2026-12-04T10:05:00Z (1m0s ago)',
      'Pods:  none',
      'Events:  none',
      '',
    ].join('\n'),
  );
});

it('formatSwarm: where the results are, how many are stored, and why storing fails', () => {
  const s = swarmSchema.parse({
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name: 'lint', namespace: 'team-a', generation: 1 },
    spec: { objective: 'x', agents: 500, agent: { command: ['a'] } },
    status: {
      phase: 'Running',
      agents: { total: 500, completed: 120, failed: 0 },
      results: {
        type: 'persistentVolumeClaim',
        location: 'pvc://lint-results/team-a/lint/u1/',
        stored: 120,
        bytes: 98304,
        pending: 7,
        lastError: 'ENOSPC: no space left on device, write',
      },
    },
  });
  const text = formatSwarm(swarmView(s, [], []), new Date('2026-12-04T10:06:00Z'));
  expect(text).toContain(
    '\nResults:   120 stored (98304 bytes), 7 pending at pvc://lint-results/team-a/lint/u1/; storing fails: ENOSPC: no space left on device, write\n',
  );
  expect(swarmView(s, [], []).results).toEqual({
    location: 'pvc://lint-results/team-a/lint/u1/',
    stored: 120,
    bytes: 98304,
    pending: 7,
    lastError: 'ENOSPC: no space left on device, write',
  });
});

describe('a sharded swarm: the shards table', () => {
  const shardEntry = (index: number, over: Record<string, unknown> = {}) => ({
    index,
    indexes: `${index * 3}-${index * 3 + 2}`,
    pod: `big-v2-1-s${index}`,
    node: `node-${index % 3}`,
    version: 'v2',
    phase: 'Running',
    agents: { total: 3, completed: 1, failed: 0 },
    ...over,
  });
  const sharded = (shards: object[]) =>
    swarmSchema.parse({
      apiVersion: 'swarm.cfn.dev/v1alpha1',
      kind: 'Swarm',
      metadata: { name: 'big', namespace: 'team-a', generation: 1 },
      spec: { objective: 'x', agents: 3 * shards.length, shards: shards.length, agent: { command: ['a'] } },
      status: { observedGeneration: 1, phase: 'Running', shards },
    });

  it('every shard by index: indexes, node, version, phase, completed/failed of total, and why it waits', () => {
    const s = sharded([
      shardEntry(2, {
        phase: 'Pending',
        node: undefined,
        pod: 'big-v2-1-s2',
        reason: 'Unschedulable',
        message: '0/3 nodes are available: 3 Insufficient cpu.',
        agents: undefined,
      }),
      shardEntry(0, { phase: 'Succeeded', agents: { total: 3, completed: 3, failed: 0 } }),
      shardEntry(1, { version: 'v1', reason: 'FellBack', message: 'V2 coordinator failed to start', agents: { total: 3, completed: 1, failed: 1 } }),
    ]);
    const v = swarmView(s, [], []);
    expect(v.shards?.map((x) => x.index)).toEqual([0, 1, 2]);
    const text = formatSwarm(v, new Date('2026-12-04T10:06:00Z'));
    const block = text.slice(text.indexOf('Shards'), text.indexOf('Pods:'));
    expect(block.split('\n')).toEqual([
      'Shards (3, 1 succeeded):',
      '  SHARD  INDEXES  NODE    VERSION  PHASE      COMPLETED  FAILED  TOTAL  REASON',
      '  0      0-2      node-0  v2       Succeeded  3          0       3      -',
      '  1      3-5      node-1  v1       Running    1          1       3      FellBack: V2 coordinator failed to start',
      '  2      6-8      -       v2       Pending    0          0       0      Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.',
      '',
    ]);
  });

  it('bounded: at most 20 rows, the shards in trouble among them, the rest counted', () => {
    const entries = Array.from({ length: 100 }, (_, i) =>
      shardEntry(i, i === 77 ? { phase: 'Failed', reason: 'NodeLost', message: 'node node-2 NotReady' } : {}),
    );
    const text = formatSwarm(swarmView(sharded(entries), [], []));
    const rows = text.split('\n').filter((l) => /^ {2}\d+ /.test(l));
    expect(rows).toHaveLength(20);
    expect(rows.some((l) => l.startsWith('  77 ') && l.includes('NodeLost: node node-2 NotReady'))).toBe(true);
    expect(text).toContain('... 80 more shards without trouble (-o json shows all)');
  });

  it('pods: by shard, then attempt, with a SHARD column', () => {
    const pod = (name: string, shard: string, attempt: string) => ({
      metadata: { name, labels: { 'swarm.cfn.dev/shard': shard, 'swarm.cfn.dev/version': 'v2', 'swarm.cfn.dev/attempt': attempt } },
      spec: { nodeName: `node-${shard}` },
      status: { phase: 'Running' },
    });
    const v = swarmView(
      sharded([shardEntry(0), shardEntry(1)]),
      [pod('big-v2-2-s1', '1', '2'), pod('big-v2-1-s0', '0', '1'), pod('big-v2-1-s1', '1', '1')],
      [],
    );
    expect(v.pods.map((p) => [p.shard, p.name])).toEqual([
      [0, 'big-v2-1-s0'],
      [1, 'big-v2-1-s1'],
      [1, 'big-v2-2-s1'],
    ]);
    const text = formatSwarm(v);
    expect(text).toContain('  SHARD  NAME         VERSION  PHASE    READY  NODE    REASON\n  0      big-v2-1-s0  v2       Running  false  node-0  -\n');
  });

  it('one shard: no shards table (the pods say it all)', () => {
    expect(swarmView(sharded([shardEntry(0)]), [], []).shards).toBeUndefined();
    expect(formatSwarm(swarmView(sharded([shardEntry(0)]), [], []))).not.toContain('Shards');
  });
});
