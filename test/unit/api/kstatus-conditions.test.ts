// Ready / Reconciling / Stalled from the phase the reconcilers decided (the
// kstatus verdict itself, from the real library, is asserted on the real API
// server: test/integration/operator/kstatus.test.ts).
import { describe, expect, it } from '@jest/globals';
import { applyKstatus, policyKstatus, swarmKstatus } from '../../../operator/api/kstatus-conditions.js';
import { rolloutPolicySpec } from '../../../operator/api/rollout-policy.js';
import type { Condition } from '../../../operator/api/common.js';
import type { SwarmResourceStatus } from '../../../operator/api/swarm.js';

const T0 = new Date('2026-12-04T10:00:00Z');
const T1 = new Date('2026-12-04T10:05:00Z');
const cond = (type: string, status: 'True' | 'False', reason: string, message = ''): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: '2026-12-04T09:00:00Z',
});

describe('swarmKstatus', () => {
  it.each([
    ['Pending', { phase: 'Pending', coordinatorPod: 's-v2-1' }, 'reconciling', 'Pending', 'waiting for the coordinator pod s-v2-1'],
    [
      'Running',
      { phase: 'Running', activeVersion: 'v2', coordinatorPod: 's-v2-1', agents: { total: 10, completed: 3, failed: 0 } },
      'reconciling',
      'Running',
      'v2 coordinator pod s-v2-1 is running',
    ],
    [
      'FallingBack',
      { phase: 'FallingBack', fallback: { from: 'v2', to: 'v1', reason: 'V2 coordinator not ready within 5s', time: 'x' } },
      'reconciling',
      'FallingBack',
      'falling back to v1: V2 coordinator not ready within 5s',
    ],
    [
      'Succeeded',
      { phase: 'Succeeded', agents: { total: 500, completed: 489, failed: 11 }, deliveryRate: 97.8 },
      'ready',
      'Succeeded',
      '500/500 agents done (489 completed, 11 failed), delivery 97.8%',
    ],
    [
      'Failed',
      { phase: 'Failed', conditions: [cond('Failed', 'True', 'DeadlineExceeded', 'deadline of 3600s exceeded')] },
      'stalled',
      'DeadlineExceeded',
      'deadline of 3600s exceeded',
    ],
    [
      'Running, 3 shards',
      { phase: 'Running', activeVersion: 'v2', shards: [0, 1, 2].map((index) => ({ index, indexes: `${index}` })) },
      'reconciling',
      'Running',
      'v2 coordinator pods of 3 shards are running',
    ],
    [
      'Pending, 3 shards',
      { phase: 'Pending', shards: [0, 1, 2].map((index) => ({ index, indexes: `${index}` })) },
      'reconciling',
      'Pending',
      'waiting for the coordinator pods of 3 shards',
    ],
    [
      'Pending, suspended',
      { phase: 'Pending', conditions: [cond('Suspended', 'True', 'Suspended', 'spec.suspend is true')] },
      'reconciling',
      'Pending',
      'suspended (spec.suspend): no coordinator pod runs',
    ],
  ] as const)('%s', (_phase, status, state, reason, message) => {
    expect(swarmKstatus(status as SwarmResourceStatus)).toEqual({ state, because: { reason, message } });
  });

  it('a progress update alone does not change the verdict (no status write per published count)', () => {
    const base = { phase: 'Running', activeVersion: 'v2', coordinatorPod: 'p' } as const;
    expect(swarmKstatus({ ...base, agents: { total: 10, completed: 1, failed: 0 } })).toEqual(
      swarmKstatus({ ...base, agents: { total: 10, completed: 9, failed: 1 } }),
    );
  });

  it('a reconcile failing permanently stalls an unfinished swarm; a retryable one keeps it reconciling', () => {
    expect(swarmKstatus({ phase: 'Pending', conditions: [cond('Reconciled', 'False', 'PermanentError', 'bad')] })).toEqual({
      state: 'stalled',
      because: { reason: 'PermanentError', message: 'bad' },
    });
    expect(swarmKstatus({ conditions: [cond('Reconciled', 'False', 'RetryLater', 'RolloutPolicy ns/p not found')] })).toEqual({
      state: 'reconciling',
      because: { reason: 'RetryLater', message: 'RolloutPolicy ns/p not found' },
    });
  });
});

describe('policyKstatus', () => {
  const spec = (s: Record<string, unknown>) => rolloutPolicySpec.parse(s);

  it('holds a stable percentage: Ready', () => {
    expect(policyKstatus(spec({ v2Percentage: 10 }), { effectivePercentage: 10, currentStep: -1 })).toEqual({
      state: 'ready',
      because: { reason: 'Stable', message: 'holding 10%' },
    });
    // Steps without autoPromote: only a person (Git, kubectl swarm rollout promote) moves it.
    expect(policyKstatus(spec({ v2Percentage: 10, steps: [{ percentage: 50 }] }), { effectivePercentage: 10 }).state).toBe('ready');
  });

  it('evaluates a step it may promote from: Reconciling', () => {
    const s = spec({ v2Percentage: 10, steps: [{ percentage: 50 }, { percentage: 100 }], autoPromote: true });
    const v = policyKstatus(s, {
      effectivePercentage: 50,
      currentStep: 0,
      conditions: [cond('GatesEvaluated', 'False', 'InsufficientSamples', '3/20 V2 swarms observed')],
    });
    expect(v).toEqual({ state: 'reconciling', because: { reason: 'EvaluatingStep', message: 'step 1 of 2 at 50%, next 100%: 3/20 V2 swarms observed' } });
    expect(policyKstatus(s, { effectivePercentage: 100, currentStep: 1 }).state).toBe('ready');
  });

  it('paused: Ready (a stable percentage), whichever holds it', () => {
    const s = spec({ v2Percentage: 10, steps: [{ percentage: 50 }], autoPromote: true });
    expect(policyKstatus({ ...s, paused: true }, { effectivePercentage: 10 })).toEqual({
      state: 'ready',
      because: { reason: 'Paused', message: 'paused: holding 10%' },
    });
    expect(policyKstatus(s, { effectivePercentage: 10 }, true).because.reason).toBe('Paused');
  });

  it('rolled back, aborted, breached without rollback, or a second default: Stalled with the reason', () => {
    const s = spec({ v2Percentage: 10 });
    expect(policyKstatus(s, { effectivePercentage: 0, conditions: [cond('RolledBack', 'True', 'GateBreached', 'fallback rate 50% > 5%')] })).toEqual({
      state: 'stalled',
      because: { reason: 'GateBreached', message: 'V2 at 0% for new swarms: fallback rate 50% > 5%' },
    });
    expect(policyKstatus(s, { effectivePercentage: 0, conditions: [cond('RolledBack', 'True', 'Aborted', 'aborted')] }).because.reason).toBe('Aborted');
    expect(policyKstatus(s, { effectivePercentage: 10, conditions: [cond('GatesEvaluated', 'True', 'GateBreached', 'delivery 80% < 95%')] })).toEqual({
      state: 'stalled',
      because: { reason: 'GateBreached', message: 'holding 10% without rollback (rollbackOnBreach: false): delivery 80% < 95%' },
    });
    expect(policyKstatus(s, { conditions: [cond('DefaultActive', 'False', 'Conflict', 'a is the namespace default')] })).toEqual({
      state: 'stalled',
      because: { reason: 'DefaultConflict', message: 'a is the namespace default' },
    });
  });
});

describe('applyKstatus', () => {
  it('Ready is always present; Reconciling and Stalled only while True; all carry observedGeneration', () => {
    let list = applyKstatus([cond('Complete', 'True', 'Completed')], { state: 'reconciling', because: { reason: 'Running', message: 'm' } }, 3, T0);
    expect(list.map((c) => [c.type, c.status, c.observedGeneration])).toEqual([
      ['Complete', 'True', undefined],
      ['Ready', 'False', 3],
      ['Reconciling', 'True', 3],
    ]);
    list = applyKstatus(list, { state: 'stalled', because: { reason: 'RunFailed', message: 'x' } }, 4, T1);
    expect(list.map((c) => [c.type, c.status, c.reason, c.observedGeneration])).toEqual([
      ['Complete', 'True', 'Completed', undefined],
      ['Ready', 'False', 'RunFailed', 4],
      ['Stalled', 'True', 'RunFailed', 4],
    ]);
    // Ready stayed False: its transition time did not move.
    expect(list.find((c) => c.type === 'Ready')?.lastTransitionTime).toBe('2026-12-04T10:00:00Z');
    list = applyKstatus(list, { state: 'ready', because: { reason: 'Succeeded', message: 'ok' } }, 4, T1);
    expect(list.filter((c) => c.type !== 'Complete').map((c) => [c.type, c.status, c.lastTransitionTime])).toEqual([['Ready', 'True', '2026-12-04T10:05:00Z']]);
  });
});
