// `kubectl swarm rollout` requests as the reconciler handles them: each once,
// never through the spec; abort holds 0% until a retry or a spec change. The
// whole path (plugin, API server, operator): test/integration/cli/kubectl-swarm.test.ts.
import { describe, expect, it } from '@jest/globals';
import { rolloutPolicy, ROLLOUT_ANNOTATIONS } from '../../../operator/api/rollout-policy.js';
import { setCondition } from '../../../operator/api/conditions.js';
import { handleRequests, routedSince, withRequestedPause } from '../../../operator/rollout/rollout-requests.js';
import type { RolloutPolicy, RolloutPolicyStatus } from '../../../operator/api/rollout-policy.js';
import type { Swarm } from '../../../operator/api/swarm.js';

const NOW = new Date('2026-12-04T12:00:00Z');

function policy(spec: Record<string, unknown>, annotations: Record<string, string> = {}): RolloutPolicy {
  return rolloutPolicy.parse({
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'RolloutPolicy',
    metadata: { name: 'p', namespace: 'ns', generation: 2, annotations },
    spec,
  });
}

/** Runs handleRequests the way the reconciler does; returns the next status and the events. */
function handle(p: RolloutPolicy, status: RolloutPolicyStatus) {
  const next: RolloutPolicyStatus = structuredClone(status);
  const events: string[] = [];
  handleRequests({
    policy: withRequestedPause(p),
    status: next,
    now: NOW,
    specKey: 'k',
    decide: (to, reason, _type, eventReason) => {
      next.lastDecision = { time: 'now', from: next.effectivePercentage ?? 0, to, reason };
      next.effectivePercentage = to;
      events.push(eventReason);
    },
    cond: (type, st, reason, message) => {
      next.conditions = setCondition(next.conditions, { type, status: st, reason, message }, 2, NOW);
    },
    event: (_type, reason) => events.push(reason),
  });
  return { status: next, events };
}

const stepped = { v2Percentage: 10, steps: [{ percentage: 50 }, { percentage: 100 }] };

describe('pause and resume', () => {
  it('the annotation pauses the evaluation as spec.paused would, without touching the spec object', () => {
    const p = policy(stepped, { [ROLLOUT_ANNOTATIONS.paused]: 'true' });
    expect(withRequestedPause(p).spec.paused).toBe(true);
    expect(p.spec.paused).toBe(false);
    const { status, events } = handle(p, { effectivePercentage: 10 });
    expect(status.requests?.pause).toMatchObject({ token: 'true', accepted: true });
    expect(events).toEqual(['Paused']);
    // Handled once: the same annotation again is no new request.
    expect(handle(p, status).events).toEqual([]);
    // Removed: resumed.
    expect(handle(policy(stepped), status).events).toEqual(['Resumed']);
  });
});

describe('promote', () => {
  it('moves to the next step now, once per token', () => {
    const p = policy(stepped, { [ROLLOUT_ANNOTATIONS.promote]: '2026-12-04T11:59:00.000Z' });
    const { status, events } = handle(p, { effectivePercentage: 10, currentStep: -1 });
    expect(status).toMatchObject({
      effectivePercentage: 50,
      currentStep: 0,
      requests: { promote: { token: '2026-12-04T11:59:00.000Z', accepted: true, message: 'promoted to 50% (step 1 of 2)' } },
    });
    expect(events).toEqual(['Promoted']);
    expect(handle(p, status).status.effectivePercentage).toBe(50);
  });

  it('is refused at the last step and while rolled back, with a Warning event', () => {
    const last = handle(policy(stepped, { [ROLLOUT_ANNOTATIONS.promote]: 't1' }), { effectivePercentage: 100, currentStep: 1 });
    expect(last.status.requests?.promote).toMatchObject({ accepted: false, message: 'no step above 100%: nothing to promote' });
    expect(last.events).toEqual(['RequestRefused']);
    const rolledBack = {
      effectivePercentage: 0,
      conditions: setCondition([], { type: 'RolledBack', status: 'True', reason: 'GateBreached', message: 'x' }, 2, NOW),
    };
    const r = handle(policy(stepped, { [ROLLOUT_ANNOTATIONS.promote]: 't1' }), rolledBack);
    expect(r.status).toMatchObject({
      effectivePercentage: 0,
      requests: { promote: { accepted: false, message: 'rolled back: nothing to promote (retry first)' } },
    });
  });
});

describe('abort and retry', () => {
  it('abort: 0% with RolledBack=True (Aborted) until a retry restarts the evaluation from the spec', () => {
    const aborted = handle(policy(stepped, { [ROLLOUT_ANNOTATIONS.abort]: '2026-12-04T11:00:00.000Z' }), { effectivePercentage: 50, currentStep: 0 });
    expect(aborted.status.effectivePercentage).toBe(0);
    expect(aborted.status.conditions?.find((c) => c.type === 'RolledBack')).toMatchObject({ status: 'True', reason: 'Aborted' });
    expect(aborted.events).toEqual(['Aborted']);
    const retried = handle(
      policy(stepped, { [ROLLOUT_ANNOTATIONS.abort]: '2026-12-04T11:00:00.000Z', [ROLLOUT_ANNOTATIONS.retry]: '2026-12-04T11:30:00.000Z' }),
      aborted.status,
    );
    expect(retried.status).toMatchObject({ effectivePercentage: 10, currentStep: -1, evaluation: { since: NOW.toISOString() } });
    expect(retried.status.conditions?.find((c) => c.type === 'RolledBack')).toMatchObject({ status: 'False', reason: 'Retried' });
    expect(retried.events).toEqual(['Retried']);
  });

  it('several new requests are handled oldest first: an abort after a retry wins', () => {
    const r = handle(policy(stepped, { [ROLLOUT_ANNOTATIONS.retry]: '2026-12-04T11:00:00.000Z', [ROLLOUT_ANNOTATIONS.abort]: '2026-12-04T11:01:00.000Z' }), {
      effectivePercentage: 50,
      currentStep: 0,
    });
    expect(r.events).toEqual(['Retried', 'Aborted']);
    expect(r.status.effectivePercentage).toBe(0);
  });

  it('a retry leaves the swarms routed before it out of the new window', () => {
    const routed = (time: string) => ({ status: { rollout: { time } } }) as unknown as Swarm;
    const swarms = [routed('2026-12-04T11:00:00.000Z'), routed('2026-12-04T12:00:01.000Z')];
    expect(routedSince(swarms, undefined)).toHaveLength(2);
    expect(routedSince(swarms, NOW.toISOString())).toEqual([swarms[1]]);
  });
});
