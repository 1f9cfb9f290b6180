// What `kubectl swarm` shows, from objects as the API server returns them
// (the commands against a real API server: test/integration/gitops/kubectl-swarm.test.ts).
import { describe, expect, it } from '@jest/globals';
import { eventViews, formatSwarm, healthOf, podViews, swarmView } from '../../../../operator/cli/plugin/object-views.js';
import { swarm as swarmSchema } from '../../../../operator/api/swarm.js';

const cond = (type: string, status: 'True' | 'False', reason: string, message: string) => ({ type, status, reason, message, lastTransitionTime: '2026-12-04T10:00:00Z' });

describe('healthOf: the kstatus reading', () => {
  it('deletion first, then an unobserved generation, then Stalled, Reconciling, Ready', () => {
    expect(healthOf({ generation: 2, deletionTimestamp: 'T' }, { observedGeneration: 2 }).state).toBe('Terminating');
    expect(healthOf({ generation: 2 }, { observedGeneration: 1, conditions: [cond('Ready', 'True', 'Stable', 'x')] })).toMatchObject({ state: 'NotObserved', message: 'generation 2 not observed by the operator yet (observed: 1)' });
    expect(healthOf({ generation: 1 }, { observedGeneration: 1, conditions: [cond('Ready', 'False', 'RunFailed', 'm'), cond('Stalled', 'True', 'RunFailed', 'm')] })).toEqual({ state: 'Stalled', reason: 'RunFailed', message: 'm' });
    expect(healthOf({ generation: 1 }, { observedGeneration: 1, conditions: [cond('Ready', 'False', 'Running', 'r'), cond('Reconciling', 'True', 'Running', 'r')] }).state).toBe('Reconciling');
    expect(healthOf({ generation: 1 }, { observedGeneration: 1, conditions: [cond('Ready', 'True', 'Succeeded', 'ok')] }).state).toBe('Ready');
  });
});

it('events: the newest five, oldest first, whatever field carries their time', () => {
  const ev = (i: number) => ({ metadata: { creationTimestamp: `2026-12-04T10:00:0${i}Z` }, type: 'Normal', reason: `R${i}`, message: 'm', ...(i % 2 ? { lastTimestamp: `2026-12-04T10:00:0${i}Z` } : { eventTime: `2026-12-04T10:00:0${i}.000000Z` }) });
  expect(eventViews([ev(6), ev(1), ev(3), ev(2), ev(5), ev(4), 'not an event']).map((e) => e.reason)).toEqual(['R2', 'R3', 'R4', 'R5', 'R6']);
});

it('pods: by attempt, with the reason a pod waits or ended', () => {
  const pods = podViews([
    { metadata: { name: 's-v1-2', labels: { 'swarm.cfn.dev/version': 'v1', 'swarm.cfn.dev/attempt': '2' } }, status: { phase: 'Pending', containerStatuses: [{ state: { waiting: { reason: 'ImagePullBackOff' } } }] } },
    { metadata: { name: 's-v2-1', labels: { 'swarm.cfn.dev/version': 'v2', 'swarm.cfn.dev/attempt': '1' } }, spec: { nodeName: 'n1' }, status: { phase: 'Failed', containerStatuses: [{ state: { terminated: { reason: 'Error', exitCode: 3 } } }] } },
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
      results: { type: 'persistentVolumeClaim', location: 'pvc://lint-results/team-a/lint/u1/', stored: 120, bytes: 98304, pending: 7, lastError: 'ENOSPC: no space left on device, write' },
    },
  });
  const text = formatSwarm(swarmView(s, [], []), new Date('2026-12-04T10:06:00Z'));
  expect(text).toContain('\nResults:   120 stored (98304 bytes), 7 pending at pvc://lint-results/team-a/lint/u1/; storing fails: ENOSPC: no space left on device, write\n');
  expect(swarmView(s, [], []).results).toEqual({ location: 'pvc://lint-results/team-a/lint/u1/', stored: 120, bytes: 98304, pending: 7, lastError: 'ENOSPC: no space left on device, write' });
});
