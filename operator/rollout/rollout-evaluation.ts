// Judging a rollout step: what the V2 swarms routed since the step began say
// about V2, and whether that holds (promote), breaches (roll back) or is too
// little to tell (wait). Pure: the reconciler feeds it the cache.
import { createHash } from 'node:crypto';
import { deliveryRate } from '../coordination/delivery.js';
import type { RolloutGates, RolloutPolicy, RolloutPolicySpec, RolloutPolicyStatus } from '../api/rollout-policy.js';
import type { Swarm } from '../api/swarm.js';

export type Observed = NonNullable<RolloutPolicyStatus['observed']>;

export type Verdict =
  | { kind: 'paused' }
  | { kind: 'insufficient'; message: string }
  | { kind: 'breach'; message: string }
  | { kind: 'hold'; message: string }
  | { kind: 'promote'; toStep: number; message: string };

/**
 * A digest of what a spec change must alter to start a fresh evaluation:
 * everything but `paused` (a pause holds the evaluation, an unpause resumes it).
 */
export function rolloutSpecKey(spec: RolloutPolicySpec): string {
  const { paused: _paused, ...rest } = spec;
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, x]) => [k, canonical(x)]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify(canonical(rest)))
    .digest('hex')
    .slice(0, 16);
}

/**
 * Whether status describes the evaluation of the policy's current spec: it
 * observed this generation, or it evaluated a spec that differs from this one
 * in `paused` only (the operator has not seen the pause or unpause yet).
 */
export function statusIsCurrent(policy: RolloutPolicy): boolean {
  const s = policy.status;
  if (!s) return false;
  if (s.observedGeneration === policy.metadata.generation) return true;
  return s.evaluation?.specKey === rolloutSpecKey(policy.spec);
}

/**
 * The current step's window: swarms routed by `policy` at step `step` by a
 * generation of the current evaluation (from `sinceGeneration`, where it
 * started, to now; recorded on each swarm when it was routed, so no clock
 * decides), at most `gates.windowSwarms` V2 swarms, the newest, and the V1
 * swarms routed within the same span.
 */
export function observe(
  policy: RolloutPolicy,
  swarms: readonly Swarm[],
  step: number,
  gates: RolloutGates,
  sinceGeneration = policy.metadata.generation,
): Observed {
  const at = (s: Swarm) => Date.parse(s.status?.rollout?.time ?? '') || 0;
  const gen = policy.metadata.generation;
  const inEvaluation = (g: number | undefined) =>
    g === gen || (g !== undefined && gen !== undefined && sinceGeneration !== undefined && g >= sinceGeneration && g <= gen);
  const routed = swarms
    .filter((s) => {
      const r = s.status?.rollout;
      return r?.policy === policy.metadata.name && inEvaluation(r.generation) && (r.step ?? -1) === step;
    })
    .sort((a, b) => at(b) - at(a));
  const allV2 = routed.filter((s) => s.status?.version === 'v2');
  const v2 = allV2.slice(0, gates.windowSwarms);
  // A full window starts at its oldest V2 swarm: V1 swarms routed before it are outside.
  const windowStart = allV2.length > v2.length ? at(v2[v2.length - 1]!) : -Infinity;
  const v1Swarms = routed.filter((s) => s.status?.version === 'v1' && at(s) >= windowStart).length;
  // status.fallback is set only when V2 itself failed (swarm-reconciler.ts):
  // a swarm whose pod waits for a node, an image or quota is no fallback.
  const fallbacks = v2.filter((s) => s.status?.fallback?.from === 'v2').length;
  const finished = v2.filter((s) => !s.status?.fallback && (s.status?.phase === 'Succeeded' || s.status?.phase === 'Failed'));
  // Delivery is completed work, from the counts (a status written before that rule held may carry another figure).
  const rates = finished.map((s) => (s.status?.agents ? deliveryRate(s.status.agents.completed, s.status.agents.total) : (s.status?.deliveryRate ?? 0)));
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    v2Swarms: v2.length,
    v1Swarms,
    fallbacks,
    fallbackRate: v2.length ? round((fallbacks / v2.length) * 100) : 0,
    ...(rates.length ? { deliveryRate: round(rates.reduce((a, b) => a + b, 0) / rates.length) } : {}),
    finishedV2Swarms: finished.length,
  };
}

/** The gates a step is judged by: its own, else the policy's (step -1: spec.v2Percentage). */
export function gatesOf(policy: RolloutPolicy, step: number): RolloutGates {
  return step >= 0 ? (policy.spec.steps?.[step]?.gates ?? policy.spec.gates) : policy.spec.gates;
}

export function judge(policy: RolloutPolicy, observed: Observed, gates: RolloutGates, currentStep: number, stepAgeMs: number): Verdict {
  if (policy.spec.paused) return { kind: 'paused' };
  const o = observed;
  if (o.v2Swarms < gates.minSamples) {
    return { kind: 'insufficient', message: `${o.v2Swarms}/${gates.minSamples} V2 swarms observed in this step: waiting for more before judging` };
  }
  if (o.fallbackRate > gates.maxFallbackRate) {
    return { kind: 'breach', message: `fallback rate ${o.fallbackRate}% > ${gates.maxFallbackRate}% over ${o.v2Swarms} V2 swarms (${o.fallbacks} fell back)` };
  }
  const deliveryJudged = o.finishedV2Swarms >= gates.minSamples && o.deliveryRate !== undefined;
  if (deliveryJudged && o.deliveryRate! < gates.minDeliveryRate) {
    return { kind: 'breach', message: `delivery rate ${o.deliveryRate}% < ${gates.minDeliveryRate}% over ${o.finishedV2Swarms} finished V2 swarms` };
  }
  const steps = policy.spec.steps ?? [];
  const next = steps.findIndex((s, i) => i > currentStep && s.percentage > (currentStep >= 0 ? steps[currentStep]!.percentage : policy.spec.v2Percentage));
  if (!deliveryJudged) {
    return { kind: 'insufficient', message: `${o.finishedV2Swarms}/${gates.minSamples} V2 swarms finished in this step: delivery not judged yet` };
  }
  const holds = `gates hold: fallback ${o.fallbackRate}% <= ${gates.maxFallbackRate}%, delivery ${o.deliveryRate}% >= ${gates.minDeliveryRate}% over ${o.v2Swarms} V2 swarms`;
  if (!policy.spec.autoPromote || next < 0) return { kind: 'hold', message: holds };
  if (stepAgeMs < gates.minDurationSeconds * 1000) return { kind: 'hold', message: `${holds}; observing ${gates.minDurationSeconds}s before promoting` };
  return { kind: 'promote', toStep: next, message: holds };
}

export function phaseOf(effective: number): 'Baseline' | 'Canary' | 'Balanced' | 'Full' {
  if (effective <= 0) return 'Baseline';
  if (effective >= 100) return 'Full';
  return effective >= 50 ? 'Balanced' : 'Canary';
}
