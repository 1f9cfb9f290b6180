// The conditions GitOps tools read (kstatus: Flux, kpt, cli-utils; Argo CD's
// health checks in config/argocd): Reconciling and Stalled, present only while
// True (abnormal-true), and Ready, always present. Derived from the phase and
// conditions the reconcilers decided, never decided here.
import { findCondition, removeCondition, setCondition } from './conditions.js';
import type { Condition } from './common.js';
import type { RolloutPolicySpec, RolloutPolicyStatus } from './rollout-policy.js';
import type { SwarmResourceStatus } from './swarm.js';

export const READY = 'Ready';
export const RECONCILING = 'Reconciling';
export const STALLED = 'Stalled';

interface Because {
  reason: string;
  message: string;
}

/** Exactly one of the three holds: the object is working, stuck, or done / stable. */
export type KstatusVerdict = { state: 'reconciling'; because: Because } | { state: 'stalled'; because: Because } | { state: 'ready'; because: Because };

/** Sets Ready and adds or removes Reconciling and Stalled to match the verdict. */
export function applyKstatus(conditions: readonly Condition[] | undefined, verdict: KstatusVerdict, generation: number | undefined, now: Date): Condition[] {
  const { state, because } = verdict;
  let list = setCondition(conditions, { type: READY, status: state === 'ready' ? 'True' : 'False', ...because }, generation, now);
  for (const [type, holds] of [
    [RECONCILING, state === 'reconciling'],
    [STALLED, state === 'stalled'],
  ] as const) {
    list = holds ? setCondition(list, { type, status: 'True', ...because }, generation, now) : removeCondition(list, type);
  }
  return list;
}

const agentsDone = (s: SwarmResourceStatus): string => {
  const a = s.agents;
  return a ? `${a.completed + a.failed}/${a.total} agents done (${a.completed} completed, ${a.failed} failed)` : 'no progress published yet';
};

/**
 * A swarm is working while Pending, Running or FallingBack, stalled once
 * Failed (with the reason of its Failed condition), ready once Succeeded.
 * A reconcile that fails permanently before the swarm finished stalls it too.
 */
export function swarmKstatus(s: SwarmResourceStatus): KstatusVerdict {
  const reconciled = findCondition(s.conditions, 'Reconciled');
  const permanent = reconciled?.status === 'False' && reconciled.reason === 'PermanentError';
  switch (s.phase) {
    case 'Succeeded': {
      const delivery = s.deliveryRate !== undefined ? `, delivery ${s.deliveryRate}%` : '';
      return { state: 'ready', because: { reason: 'Succeeded', message: `${agentsDone(s)}${delivery}` } };
    }
    case 'Failed': {
      const failed = findCondition(s.conditions, 'Failed');
      return { state: 'stalled', because: { reason: failed?.reason ?? 'Failed', message: failed?.message ?? 'the swarm failed' } };
    }
    case undefined:
    case 'Pending':
    case 'Running':
    case 'FallingBack': {
      if (permanent) return { state: 'stalled', because: { reason: 'PermanentError', message: reconciled.message } };
      if (reconciled?.status === 'False') return { state: 'reconciling', because: { reason: 'RetryLater', message: reconciled.message } };
      const phase = s.phase ?? 'Pending';
      // No agent counts here: progress would then cost a status write per update.
      const pod = s.coordinatorPod ? ` ${s.coordinatorPod}` : '';
      // A swarm of several shards has one coordinator pod per shard (status.shards names them).
      const shards = (s.shards?.length ?? 0) > 1 ? ` of ${s.shards?.length} shards` : '';
      const pods = shards ? `s${shards}` : pod;
      const detail =
        phase === 'FallingBack' && s.fallback
          ? `falling back to ${s.fallback.to}: ${s.fallback.reason}`
          : findCondition(s.conditions, 'Suspended')?.status === 'True'
            ? 'suspended (spec.suspend): no coordinator pod runs'
            : phase === 'Running'
              ? `${s.activeVersion ?? ''} coordinator pod${pods} ${shards ? 'are' : 'is'} running`.trimStart()
              : `waiting for the coordinator pod${pods}`;
      return { state: 'reconciling', because: { reason: phase, message: detail } };
    }
  }
}

/**
 * A policy is working while it evaluates a step it may promote from, stalled
 * when rolled back (gates or `kubectl swarm rollout abort`), when a breach
 * holds it without rollback, or when it is a second namespace default that
 * routes nothing; otherwise it holds a stable percentage (paused included).
 */
export function policyKstatus(spec: RolloutPolicySpec, s: RolloutPolicyStatus, paused = spec.paused): KstatusVerdict {
  const effective = s.effectivePercentage ?? spec.v2Percentage;
  const rolledBack = findCondition(s.conditions, 'RolledBack');
  if (rolledBack?.status === 'True')
    return { state: 'stalled', because: { reason: rolledBack.reason, message: `V2 at 0% for new swarms: ${rolledBack.message}` } };
  const conflict = findCondition(s.conditions, 'DefaultActive');
  if (conflict?.status === 'False') return { state: 'stalled', because: { reason: 'DefaultConflict', message: conflict.message } };
  const gates = findCondition(s.conditions, 'GatesEvaluated');
  if (!paused && gates?.status === 'True' && gates.reason === 'GateBreached') {
    return {
      state: 'stalled',
      because: { reason: 'GateBreached', message: `holding ${effective}% without rollback (rollbackOnBreach: false): ${gates.message}` },
    };
  }
  if (paused) return { state: 'ready', because: { reason: 'Paused', message: `paused: holding ${effective}%` } };
  const steps = spec.steps ?? [];
  const step = s.currentStep ?? -1;
  const stepPct = step >= 0 ? (steps[step]?.percentage ?? effective) : spec.v2Percentage;
  const next = steps.find((x, i) => i > step && x.percentage > stepPct);
  if (spec.autoPromote && next) {
    const where = step >= 0 ? `step ${step + 1} of ${steps.length}` : 'spec.v2Percentage';
    return {
      state: 'reconciling',
      because: { reason: 'EvaluatingStep', message: `${where} at ${effective}%, next ${next.percentage}%: ${gates?.message ?? 'not judged yet'}` },
    };
  }
  return { state: 'ready', because: { reason: 'Stable', message: `holding ${effective}%` } };
}
