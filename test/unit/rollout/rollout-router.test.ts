import { describe, expect, it } from '@jest/globals';
import { createHash, randomUUID } from 'node:crypto';
import { rolloutPolicy } from '../../../operator/api/rollout-policy.js';
import { swarm as swarmSchema } from '../../../operator/api/swarm.js';
import { judge, observe } from '../../../operator/rollout/rollout-evaluation.js';
import { defaultPolicy, effectivePercentage, RolloutRouter } from '../../../operator/rollout/rollout-router.js';
import type { RolloutPolicy } from '../../../operator/api/rollout-policy.js';
import type { Swarm } from '../../../operator/api/swarm.js';

const policy = (name: string, spec: Record<string, unknown>, extra: Record<string, unknown> = {}): RolloutPolicy =>
  rolloutPolicy.parse({ apiVersion: 'swarm.cfn.dev/v1alpha1', kind: 'RolloutPolicy', metadata: { name, namespace: 'ns', generation: 1, ...extra }, spec });

const swarm = (uid: string, spec: Record<string, unknown> = {}, status?: Record<string, unknown>): Swarm =>
  swarmSchema.parse({
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name: `s-${uid.slice(0, 8)}`, namespace: 'ns', uid },
    spec: { objective: 'x', agents: 1, agent: { command: ['true'] }, ...spec },
    ...(status ? { status } : {}),
  });

describe('RolloutRouter', () => {
  it('routes 8-12% of 1000 swarms to V2 at 10%, the same way every time', () => {
    const router = new RolloutRouter(() => [policy('p', { v2Percentage: 10, default: true })]);
    // Fixed, UUID-shaped ids: a random draw would miss the 8-12% band about 1% of the time.
    const uids = Array.from({ length: 1000 }, (_, i) => {
      const h = createHash('sha256').update(`swarm-${i}`).digest('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
    });
    const first = uids.map((u) => router.route(swarm(u))!.version);
    const share = first.filter((v) => v === 'v2').length / 10;
    expect(share).toBeGreaterThanOrEqual(8);
    expect(share).toBeLessThanOrEqual(12);
    expect(uids.map((u) => router.route(swarm(u))!.version)).toEqual(first);
  });

  it('explains the decision with the policy, the bucket and the percentage', () => {
    const d = new RolloutRouter(() => [policy('canary', { v2Percentage: 100, default: true })]).route(swarm(randomUUID()))!;
    expect(d.version).toBe('v2');
    expect(d.reason).toMatch(/^RolloutPolicy canary at 100%: bucket \d+ < 100$/);
    expect(d.rollout).toMatchObject({ policy: 'canary', percentage: 100 });
  });

  it('uses the named policy over the default, and waits when the named one is missing', () => {
    const router = new RolloutRouter(() => [policy('all', { v2Percentage: 100, default: true }), policy('none', { v2Percentage: 0 })]);
    expect(router.route(swarm(randomUUID(), { rolloutPolicyRef: { name: 'none' } }))!.version).toBe('v1');
    expect(() => router.route(swarm(randomUUID(), { rolloutPolicyRef: { name: 'ghost' } }))).toThrow(
      /RolloutPolicy ns\/ghost named by spec.rolloutPolicyRef not found/,
    );
    expect(new RolloutRouter(() => []).route(swarm(randomUUID()))).toBeUndefined();
  });

  it('picks the oldest default policy', () => {
    const older = policy('b', { v2Percentage: 1, default: true }, { creationTimestamp: '2026-01-01T00:00:00Z' });
    const newer = policy('a', { v2Percentage: 1, default: true }, { creationTimestamp: '2026-02-01T00:00:00Z' });
    expect(defaultPolicy([newer, older])?.metadata.name).toBe('b');
  });

  it('routes with the status percentage only once the current generation was evaluated', () => {
    const p = policy('p', { v2Percentage: 10 }, { generation: 2 });
    expect(effectivePercentage({ ...p, status: { effectivePercentage: 0, observedGeneration: 2 } })).toBe(0);
    expect(effectivePercentage({ ...p, status: { effectivePercentage: 0, observedGeneration: 1 } })).toBe(10);
  });
});

describe('rollout gates', () => {
  const gates = { maxFallbackRate: 5, minDeliveryRate: 95, minSamples: 4, windowSwarms: 100, minDurationSeconds: 0 };
  const p = policy('p', { v2Percentage: 10, steps: [{ percentage: 50 }, { percentage: 100 }], autoPromote: true });
  const routed = (n: number, status: Record<string, unknown>) =>
    Array.from({ length: n }, () =>
      swarm(
        randomUUID(),
        {},
        { version: 'v2', rollout: { policy: 'p', bucket: 1, percentage: 10, time: '2026-11-25T01:00:00Z', generation: 1, step: -1 }, ...status },
      ),
    );

  it('does not judge on fewer than minSamples swarms', () => {
    const o = observe(p, routed(3, { fallback: { from: 'v2', to: 'v1', reason: 'x', time: 't' } }), -1, gates);
    expect(judge(p, o, gates, -1, 0)).toMatchObject({ kind: 'insufficient', message: '3/4 V2 swarms observed in this step: waiting for more before judging' });
  });

  it('breaches on the fallback rate with the figures', () => {
    const swarms = [...routed(3, { phase: 'Succeeded', deliveryRate: 100 }), ...routed(1, { fallback: { from: 'v2', to: 'v1', reason: 'x', time: 't' } })];
    const o = observe(p, swarms, -1, gates);
    expect(o).toMatchObject({ v2Swarms: 4, fallbacks: 1, fallbackRate: 25 });
    expect(judge(p, o, gates, -1, 0)).toEqual({ kind: 'breach', message: 'fallback rate 25% > 5% over 4 V2 swarms (1 fell back)' });
  });

  it('breaches on the delivery rate of finished swarms', () => {
    const o = observe(p, routed(4, { phase: 'Succeeded', deliveryRate: 90 }), -1, gates);
    expect(judge(p, o, gates, -1, 0)).toMatchObject({ kind: 'breach', message: 'delivery rate 90% < 95% over 4 finished V2 swarms' });
  });

  it('promotes to the next step when the gates hold, and holds at the last one', () => {
    const o = observe(p, routed(4, { phase: 'Succeeded', deliveryRate: 100 }), -1, gates);
    expect(judge(p, o, gates, -1, 0)).toMatchObject({ kind: 'promote', toStep: 0 });
    expect(judge(p, o, gates, 1, 0)).toMatchObject({ kind: 'hold' });
    expect(judge(p, o, { ...gates, minDurationSeconds: 60 }, -1, 1000)).toMatchObject({ kind: 'hold' });
  });

  it('counts only swarms routed by this generation and step of this policy', () => {
    const old = routed(4, { phase: 'Succeeded', deliveryRate: 100 });
    // regression: right after a promotion, the previous step's swarms do not count (whole-second clocks mixed them).
    expect(observe(p, old, 0, gates).v2Swarms).toBe(0);
    expect(observe(p, old, -1, gates).v2Swarms).toBe(4);
    expect(observe({ ...p, metadata: { ...p.metadata, generation: 2 } }, old, -1, gates).v2Swarms).toBe(0);
    expect(observe(policy('q', { v2Percentage: 1 }), old, -1, gates).v2Swarms).toBe(0);
  });
});
