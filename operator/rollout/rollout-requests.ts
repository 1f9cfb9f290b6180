// Requests of `kubectl swarm rollout pause|resume|promote|abort|retry`: what
// GitOps leaves to the operator. They arrive as annotations (never the spec,
// which Git owns), each handled once: status.requests records the last token
// handled per action, and whether it was acted on.
import { ROLLOUT_ANNOTATIONS } from '../api/rollout-policy.js';
import { findCondition } from '../api/conditions.js';
import { kubeTime } from '../api/common.js';
import type { RolloutPolicy, RolloutPolicyStatus, RolloutRequestAction } from '../api/rollout-policy.js';
import type { Swarm } from '../api/swarm.js';
import type { EventType } from '../k8s/events.js';

export interface RequestContext {
  /** The policy as evaluated: spec.paused already includes the pause annotation. */
  policy: RolloutPolicy;
  /** Mutated: the next status. */
  status: RolloutPolicyStatus;
  now: Date;
  specKey: string;
  decide: (to: number, reason: string, type: EventType, eventReason: string) => void;
  cond: (type: string, st: 'True' | 'False', reason: string, message: string) => void;
  event: (type: EventType, reason: string, message: string) => void;
}

const annotation = (p: RolloutPolicy, key: string): string | undefined => p.metadata.annotations?.[key];

export const pausedByRequest = (p: RolloutPolicy): boolean => annotation(p, ROLLOUT_ANNOTATIONS.paused) === 'true';

/** The policy with spec.paused true while either Git or `kubectl swarm rollout pause` holds it (the spec itself is never written). */
export const withRequestedPause = (p: RolloutPolicy): RolloutPolicy => (pausedByRequest(p) && !p.spec.paused ? { ...p, spec: { ...p.spec, paused: true } } : p);

/** Swarms a retry left out of the new evaluation: those routed before it. */
export const routedSince = (swarms: readonly Swarm[], since: string | undefined): Swarm[] => {
  const t = since ? Date.parse(since) : NaN;
  return Number.isNaN(t) ? [...swarms] : swarms.filter((s) => (Date.parse(s.status?.rollout?.time ?? '') || 0) >= t);
};

const EMPTY_OBSERVED = { v2Swarms: 0, v1Swarms: 0, fallbacks: 0, fallbackRate: 0, finishedV2Swarms: 0 };

type Outcome = { accepted: boolean; message: string };

function promote(ctx: RequestContext): Outcome {
  const { policy, status, now } = ctx;
  if (findCondition(status.conditions, 'RolledBack')?.status === 'True') return { accepted: false, message: 'rolled back: nothing to promote (retry first)' };
  const steps = policy.spec.steps ?? [];
  const step = status.currentStep ?? -1;
  const current = step >= 0 ? (steps[step]?.percentage ?? 0) : policy.spec.v2Percentage;
  const next = steps.findIndex((s, i) => i > step && s.percentage > current);
  if (next < 0) return { accepted: false, message: `no step above ${current}%: nothing to promote` };
  const to = steps[next]!.percentage;
  ctx.decide(to, `promoted by request (kubectl swarm rollout promote): step ${next + 1} of ${steps.length}, gates not awaited`, 'Normal', 'Promoted');
  status.currentStep = next;
  status.stepStartTime = now.toISOString();
  status.observed = { ...EMPTY_OBSERVED };
  return { accepted: true, message: `promoted to ${to}% (step ${next + 1} of ${steps.length})` };
}

function abort(ctx: RequestContext): Outcome {
  const message = 'aborted by request (kubectl swarm rollout abort): new swarms run V1 until the next spec change or a retry';
  ctx.decide(0, message, 'Warning', 'Aborted');
  ctx.cond('RolledBack', 'True', 'Aborted', message);
  return { accepted: true, message: 'V2 at 0% for new swarms until the next spec change or a retry' };
}

function retry(ctx: RequestContext): Outcome {
  const { policy, status, now } = ctx;
  const pct = policy.spec.v2Percentage;
  ctx.decide(pct, `retry requested (kubectl swarm rollout retry): evaluation restarted from spec.v2Percentage=${pct}`, 'Normal', 'Retried');
  ctx.cond('RolledBack', 'False', 'Retried', 'evaluation restarted from the spec by a retry');
  status.currentStep = -1;
  status.stepStartTime = now.toISOString();
  status.observed = { ...EMPTY_OBSERVED };
  status.evaluation = { generation: status.evaluation?.generation ?? policy.metadata.generation ?? 0, specKey: ctx.specKey, since: now.toISOString() };
  return { accepted: true, message: `evaluation restarted at ${pct}%` };
}

const ACTIONS: Record<Exclude<RolloutRequestAction, 'pause'>, (ctx: RequestContext) => Outcome> = { promote, abort, retry };

/** Handles every request not handled yet, oldest token first. */
export function handleRequests(ctx: RequestContext): void {
  const { policy, status, now } = ctx;
  const record = (action: RolloutRequestAction, token: string, o: Outcome) => {
    status.requests = { ...status.requests, [action]: { token: token.slice(0, 128), accepted: o.accepted, message: o.message, time: kubeTime(now) } };
  };
  const pauseToken = pausedByRequest(policy) ? 'true' : '';
  if ((status.requests?.pause?.token ?? '') !== pauseToken) {
    const [reason, message] = pauseToken
      ? ['Paused', 'paused by request (kubectl swarm rollout pause)']
      : ['Resumed', 'resumed by request (kubectl swarm rollout resume)'];
    ctx.event('Normal', reason, `${message}: ${status.effectivePercentage ?? policy.spec.v2Percentage}%`);
    record('pause', pauseToken, { accepted: true, message });
  }
  const pending = (Object.keys(ACTIONS) as Array<keyof typeof ACTIONS>)
    .map((action) => ({ action, token: annotation(policy, ROLLOUT_ANNOTATIONS[action]) }))
    .filter((r): r is { action: keyof typeof ACTIONS; token: string } => Boolean(r.token) && r.token!.slice(0, 128) !== status.requests?.[r.action]?.token)
    .sort((a, b) => a.token.localeCompare(b.token));
  for (const { action, token } of pending) {
    const outcome = ACTIONS[action](ctx);
    if (!outcome.accepted) ctx.event('Warning', 'RequestRefused', `${action}: ${outcome.message}`);
    record(action, token, outcome);
  }
}
