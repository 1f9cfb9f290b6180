// The pure judgement of a rollout step (observe + judge): pause, windowing,
// too few samples. The reconciler's use of it: rollout-policy-reconciler.test.ts.
import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { rolloutPolicy } from '../../../operator/api/rollout-policy.js';
import { swarm as swarmSchema } from '../../../operator/api/swarm.js';
import { judge, observe } from '../../../operator/rollout/rollout-evaluation.js';
import type { RolloutGates, RolloutPolicy } from '../../../operator/api/rollout-policy.js';
import type { Swarm } from '../../../operator/api/swarm.js';

const policy = (spec: Record<string, unknown>): RolloutPolicy =>
  rolloutPolicy.parse({ apiVersion: 'swarm.cfn.dev/v1alpha1', kind: 'RolloutPolicy', metadata: { name: 'p', namespace: 'ns', generation: 1 }, spec });

const gates: RolloutGates = { maxFallbackRate: 5, minDeliveryRate: 95, minSamples: 4, windowSwarms: 100, minDurationSeconds: 0 };
const FALLBACK = { fallback: { from: 'v2', to: 'v1', reason: 'preflight', time: '2026-11-25T01:00:00Z' } };
const SUCCEEDED = { phase: 'Succeeded', deliveryRate: 100 };

/** A swarm routed by policy p (generation 1, step -1) at `second` seconds past the hour. */
function routed(version: 'v1' | 'v2', second: number, status: Record<string, unknown> = {}): Swarm {
  const uid = randomUUID();
  return swarmSchema.parse({
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name: `s-${uid.slice(0, 8)}`, namespace: 'ns', uid },
    spec: { objective: 'x', agents: 1, agent: { command: ['true'] } },
    status: {
      version,
      rollout: {
        policy: 'p',
        bucket: 1,
        percentage: 10,
        time: new Date(Date.parse('2026-11-25T01:00:00Z') + second * 1000).toISOString(),
        generation: 1,
        step: -1,
      },
      ...status,
    },
  });
}
const series = (version: 'v1' | 'v2', from: number, n: number, status: Record<string, unknown> = {}) =>
  Array.from({ length: n }, (_, i) => routed(version, from + i, status));

describe('spec.paused', () => {
  const paused = policy({ v2Percentage: 10, steps: [{ percentage: 50 }], autoPromote: true, rollbackOnBreach: true, paused: true });

  it('decides nothing while paused: figures that would promote do not', () => {
    const o = observe(paused, series('v2', 0, 4, SUCCEEDED), -1, gates);
    expect(o).toMatchObject({ v2Swarms: 4, finishedV2Swarms: 4, deliveryRate: 100, fallbackRate: 0 });
    expect(judge({ ...paused, spec: { ...paused.spec, paused: false } }, o, gates, -1, 0)).toMatchObject({ kind: 'promote', toStep: 0 });
    expect(judge(paused, o, gates, -1, 0)).toEqual({ kind: 'paused' });
  });

  it('decides nothing while paused: figures that would breach do not, yet are still observed', () => {
    const o = observe(paused, series('v2', 0, 4, FALLBACK), -1, gates);
    expect(o).toMatchObject({ v2Swarms: 4, fallbacks: 4, fallbackRate: 100 });
    expect(judge({ ...paused, spec: { ...paused.spec, paused: false } }, o, gates, -1, 0)).toMatchObject({ kind: 'breach' });
    expect(judge(paused, o, gates, -1, 0)).toEqual({ kind: 'paused' });
  });
});

describe('the window (gates.windowSwarms)', () => {
  const p = policy({ v2Percentage: 10, steps: [{ percentage: 50 }], autoPromote: true });
  const window = { ...gates, windowSwarms: 4 };

  it('observes only the newest windowSwarms V2 swarms: older fallbacks leave the window', () => {
    // Six old V2 swarms that fell back, then four newer ones that succeeded.
    const swarms = [...series('v2', 0, 6, FALLBACK), ...series('v2', 10, 4, SUCCEEDED)];
    const all = observe(p, swarms, -1, gates);
    expect(all).toMatchObject({ v2Swarms: 10, fallbacks: 6, fallbackRate: 60 });
    const o = observe(p, swarms, -1, window);
    expect(o).toEqual({ v2Swarms: 4, v1Swarms: 0, fallbacks: 0, fallbackRate: 0, deliveryRate: 100, finishedV2Swarms: 4 });
    expect(judge(p, o, window, -1, 0)).toMatchObject({ kind: 'promote', toStep: 0 });
  });

  it('keeps the newest by routing time whatever the order of the cache', () => {
    const swarms = [...series('v2', 10, 4, FALLBACK), ...series('v2', 0, 6, SUCCEEDED)].reverse();
    const o = observe(p, swarms, -1, window);
    expect(o).toMatchObject({ v2Swarms: 4, fallbacks: 4, fallbackRate: 100 });
    expect(o.finishedV2Swarms).toBe(0);
    expect(judge(p, o, window, -1, 0)).toMatchObject({ kind: 'breach', message: 'fallback rate 100% > 5% over 4 V2 swarms (4 fell back)' });
  });

  it('regression: v1Swarms counted every V1 swarm of the step, not those of the window', () => {
    // V1 swarms routed before the oldest V2 swarm of the window are outside it.
    const swarms = [...series('v1', 0, 50), ...series('v2', 50, 6, SUCCEEDED), ...series('v1', 56, 3), ...series('v2', 59, 4, SUCCEEDED)];
    // Window of 4: the V2 swarms at 59-62 s; the V1 swarms at 56-58 s are older than all of them.
    expect(observe(p, swarms, -1, window)).toMatchObject({ v2Swarms: 4, v1Swarms: 0 });
    // Window of 6: the V2 swarms at 54-55 and 59-62 s, with the three V1 swarms at 56-58 s between them.
    expect(observe(p, swarms, -1, { ...gates, windowSwarms: 6 })).toMatchObject({ v2Swarms: 6, v1Swarms: 3 });
    // A window that is not full covers the whole step.
    expect(observe(p, swarms, -1, gates)).toMatchObject({ v2Swarms: 10, v1Swarms: 53 });
  });
});

describe('too few samples', () => {
  const p = policy({ v2Percentage: 10, steps: [{ percentage: 50 }], autoPromote: true, rollbackOnBreach: true });

  it('waits on fewer than minSamples V2 swarms even when every one fell back', () => {
    const o = observe(p, [...series('v2', 0, 3, FALLBACK), ...series('v1', 3, 40)], -1, gates);
    expect(o).toMatchObject({ v2Swarms: 3, v1Swarms: 40, fallbackRate: 100 });
    expect(judge(p, o, gates, -1, 0)).toEqual({ kind: 'insufficient', message: '3/4 V2 swarms observed in this step: waiting for more before judging' });
  });

  it('waits for minSamples finished V2 swarms before judging delivery or promoting', () => {
    const o = observe(p, [...series('v2', 0, 3, SUCCEEDED), ...series('v2', 3, 2, { phase: 'Running' })], -1, gates);
    expect(o).toMatchObject({ v2Swarms: 5, finishedV2Swarms: 3 });
    expect(judge(p, o, gates, -1, 0)).toEqual({ kind: 'insufficient', message: '3/4 V2 swarms finished in this step: delivery not judged yet' });
  });
});
