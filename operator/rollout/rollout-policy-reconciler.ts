// Reconciles a RolloutPolicy's status from what its swarms did. Never writes
// spec (GitOps owns it): promotion and rollback live in status, and a new spec
// generation starts a fresh evaluation from that spec.
import { GROUP_VERSION, kubeTime, ROLLOUT_POLICY_RESOURCE } from '../api/common.js';
import { findCondition, setCondition } from '../api/conditions.js';
import { applyKstatus, policyKstatus } from '../api/kstatus-conditions.js';
import { rolloutPolicy as policySchema } from '../api/rollout-policy.js';
import { resourcePath } from '../k8s/client.js';
import { PermanentError } from '../k8s/errors.js';
import { defaultPolicy, parsePolicies } from './rollout-router.js';
import { gatesOf, judge, observe, phaseOf, rolloutSpecKey } from './rollout-evaluation.js';
import { handleRequests, routedSince, withRequestedPause } from './rollout-requests.js';
import type { RolloutPolicy, RolloutPolicyStatus } from '../api/rollout-policy.js';
import type { Swarm } from '../api/swarm.js';
import type { ReconcileResult } from '../controller/controller.js';
import type { KubeClient, KubeObject } from '../k8s/client.js';
import type { EventRecorder, EventType } from '../k8s/events.js';
import type { OperatorMetrics } from '../observability/metrics.js';
import type { Logger } from 'pino';

export const POLICY_FIELD_MANAGER = 'swarm-operator';
const PHASES = ['Baseline', 'Canary', 'Balanced', 'Full', 'Paused', 'RolledBack'] as const;

export interface RolloutPolicyReconcilerDeps {
  client: KubeClient;
  getPolicy: (key: string) => KubeObject | undefined;
  listPolicies: (namespace: string) => KubeObject[];
  listSwarms: (namespace: string) => Swarm[];
  recorder: EventRecorder;
  logger: Logger;
  metrics?: OperatorMetrics;
  now?: () => Date;
  /** How often a policy waiting on time (minDurationSeconds) is looked at again. */
  resyncMs?: number;
}


export class RolloutPolicyReconciler {
  constructor(private readonly deps: RolloutPolicyReconcilerDeps) {}

  reconcile = async (key: string): Promise<ReconcileResult | void> => {
    const raw = this.deps.getPolicy(key);
    if (!raw) return this.forgetMetrics(key);
    const parsed = policySchema.safeParse(raw);
    if (!parsed.success) throw new PermanentError(`${key}: invalid RolloutPolicy: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const policy = withRequestedPause(parsed.data);
    const ns = policy.metadata.namespace ?? 'default';
    const now = this.deps.now?.() ?? new Date();
    const status: RolloutPolicyStatus = structuredClone(policy.status ?? {});
    const events: Array<[EventType, string, string]> = [];
    const gen = policy.metadata.generation;
    const cond = (type: string, st: 'True' | 'False', reason: string, message: string) => {
      status.conditions = setCondition(status.conditions, { type, status: st, reason, message }, gen, now);
    };
    const decide = (to: number, reason: string, type: EventType, eventReason: string) => {
      const from = status.effectivePercentage ?? 0;
      status.lastDecision = { time: kubeTime(now), from, to, reason };
      status.effectivePercentage = to;
      events.push([type, eventReason, `${from}% -> ${to}%: ${reason}`]);
      this.deps.logger.info({ namespace: ns, name: policy.metadata.name, from, to, reason }, 'rollout decision');
    };

    const specKey = rolloutSpecKey(policy.spec);
    const evaluation = status.evaluation;
    const where = () => {
      const st = status.currentStep ?? -1;
      if (findCondition(status.conditions, 'RolledBack')?.status === 'True') return 'rolled back';
      return st >= 0 ? `step ${st + 1} of ${policy.spec.steps?.length ?? 0}` : 'spec.v2Percentage';
    };
    if (status.observedGeneration !== gen && evaluation?.specKey === specKey && status.effectivePercentage !== undefined) {
      // Only `paused` changed: the evaluation in progress holds (pause) or goes on (unpause), as it stands.
      status.observedGeneration = gen;
      const c = findCondition(status.conditions, 'RolledBack');
      if (c) cond('RolledBack', c.status === 'True' ? 'True' : 'False', c.reason, c.message);
      const [reason, message] = policy.spec.paused ? ['Paused', `spec.paused: holding ${status.effectivePercentage}% (${where()})`] : ['Resumed', `spec.paused cleared: resuming at ${status.effectivePercentage}% (${where()})`];
      events.push(['Normal', reason, message]);
      this.deps.logger.info({ namespace: ns, name: policy.metadata.name, effective: status.effectivePercentage, paused: policy.spec.paused }, 'rollout paused or resumed');
    } else if (status.observedGeneration !== gen) {
      // A spec change (a Git commit) restarts the evaluation from the spec.
      decide(policy.spec.v2Percentage, `spec generation ${gen ?? '?'}: v2Percentage=${policy.spec.v2Percentage}`, 'Normal', 'SpecApplied');
      status.currentStep = -1;
      status.stepStartTime = now.toISOString();
      status.observedGeneration = gen;
      cond('RolledBack', 'False', 'SpecApplied', 'evaluation restarted from the new spec');
      status.evaluation = { generation: gen ?? 0, specKey };
    } else if (evaluation?.specKey !== specKey) {
      // Evaluated before the operator recorded which spec it evaluated: this one.
      status.evaluation = { generation: gen ?? 0, specKey };
    }
    handleRequests({ policy, status, now, specKey, decide, cond, event: (type, reason, message) => events.push([type, reason, message]) });
    const step = status.currentStep ?? -1;
    const gates = gatesOf(policy, step);
    const since = status.stepStartTime ?? now.toISOString();
    const rolledBack = findCondition(status.conditions, 'RolledBack')?.status === 'True';
    // Rolled back: the figures that caused it stay in status until the next spec change.
    const observed = rolledBack && status.observed ? status.observed : observe(policy, routedSince(this.deps.listSwarms(ns), status.evaluation?.since), step, gates, status.evaluation?.generation ?? gen);
    status.observed = observed;

    let requeue: number | undefined;
    if (!rolledBack) {
      const verdict = judge(policy, observed, gates, step, now.getTime() - Date.parse(since));
      switch (verdict.kind) {
        case 'paused':
          cond('GatesEvaluated', 'False', 'Paused', 'spec.paused is true: holding the effective percentage');
          break;
        case 'insufficient':
          cond('GatesEvaluated', 'False', 'InsufficientSamples', verdict.message);
          break;
        case 'breach':
          cond('GatesEvaluated', 'True', 'GateBreached', verdict.message);
          if (policy.spec.rollbackOnBreach) {
            decide(0, verdict.message, 'Warning', 'RolledBack');
            cond('RolledBack', 'True', 'GateBreached', verdict.message);
          }
          break;
        case 'hold':
          cond('GatesEvaluated', 'True', 'GatesHold', verdict.message);
          if (policy.spec.autoPromote) requeue = this.deps.resyncMs ?? 10_000;
          break;
        case 'promote': {
          const to = policy.spec.steps![verdict.toStep]!.percentage;
          cond('GatesEvaluated', 'True', 'GatesHold', verdict.message);
          decide(to, `promoted: ${verdict.message}`, 'Normal', 'Promoted');
          status.currentStep = verdict.toStep;
          status.stepStartTime = now.toISOString();
          status.observed = { v2Swarms: 0, v1Swarms: 0, fallbacks: 0, fallbackRate: 0, finishedV2Swarms: 0 };
          // Judge the new step at once (it starts with no samples), not on the next swarm event.
          requeue = 0;
          break;
        }
      }
    }
    const effective = status.effectivePercentage ?? policy.spec.v2Percentage;
    status.phase = findCondition(status.conditions, 'RolledBack')?.status === 'True' ? 'RolledBack' : policy.spec.paused ? 'Paused' : phaseOf(effective);
    this.defaultConflict(policy, cond);
    status.conditions = applyKstatus(status.conditions, policyKstatus(policy.spec, status), gen, now);

    if (JSON.stringify(status) !== JSON.stringify(policy.status ?? {})) {
      await this.deps.client.apply(
        resourcePath({ ...ROLLOUT_POLICY_RESOURCE, namespace: ns, name: policy.metadata.name }),
        { apiVersion: GROUP_VERSION, kind: 'RolloutPolicy', metadata: { name: policy.metadata.name, namespace: ns, resourceVersion: policy.metadata.resourceVersion }, status },
        { fieldManager: POLICY_FIELD_MANAGER, force: true, subresource: 'status' },
      );
    }
    for (const [type, reason, message] of events) {
      await this.deps.recorder.record({ apiVersion: GROUP_VERSION, kind: 'RolloutPolicy', name: policy.metadata.name, namespace: ns, ...(policy.metadata.uid ? { uid: policy.metadata.uid } : {}) }, type, reason, message);
    }
    this.observeMetrics(policy, status);
    return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
  };

  /** Two defaults in one namespace: the oldest wins, the others say so. */
  private defaultConflict(policy: RolloutPolicy, cond: (type: string, st: 'True' | 'False', reason: string, message: string) => void): void {
    if (!policy.spec.default) return;
    const winner = defaultPolicy(parsePolicies(this.deps.listPolicies(policy.metadata.namespace ?? 'default')));
    if (winner && winner.metadata.name !== policy.metadata.name) cond('DefaultActive', 'False', 'Conflict', `${winner.metadata.name} is the namespace default (the oldest marked default)`);
    else cond('DefaultActive', 'True', 'Default', 'routes the Swarms of this namespace that name no policy');
  }

  /**
   * The evaluation as gauges, next to the gates it is judged by, so alerts
   * (config/prometheus) compare the two per policy without knowing any spec.
   */
  private observeMetrics(policy: RolloutPolicy, status: RolloutPolicyStatus): void {
    const m = this.deps.metrics;
    if (!m) return;
    const label = `${policy.metadata.namespace ?? 'default'}/${policy.metadata.name}`;
    const o = status.observed;
    const gates = gatesOf(policy, status.currentStep ?? -1);
    m.rolloutEffectivePercentage.set({ policy: label }, status.effectivePercentage ?? 0);
    m.rolloutFallbackRate.set({ policy: label }, o?.fallbackRate ?? 0);
    if (o?.deliveryRate !== undefined) m.rolloutDeliveryRate.set({ policy: label }, o.deliveryRate);
    else m.rolloutDeliveryRate.remove({ policy: label });
    m.rolloutObservedV2Swarms.set({ policy: label }, o?.v2Swarms ?? 0);
    m.rolloutObservedFinishedV2Swarms.set({ policy: label }, o?.finishedV2Swarms ?? 0);
    m.rolloutGateMaxFallbackRate.set({ policy: label }, gates.maxFallbackRate);
    m.rolloutGateMinDeliveryRate.set({ policy: label }, gates.minDeliveryRate);
    m.rolloutGateMinSamples.set({ policy: label }, gates.minSamples);
    for (const phase of PHASES) m.rolloutPhase.set({ policy: label, phase }, status.phase === phase ? 1 : 0);
  }

  /** A deleted policy's gauges go: a stale breach must not keep an alert firing. */
  private forgetMetrics(key: string): void {
    const m = this.deps.metrics;
    if (!m) return;
    const policy = key;
    for (const g of [m.rolloutEffectivePercentage, m.rolloutFallbackRate, m.rolloutDeliveryRate, m.rolloutObservedV2Swarms, m.rolloutObservedFinishedV2Swarms, m.rolloutGateMaxFallbackRate, m.rolloutGateMinDeliveryRate, m.rolloutGateMinSamples]) {
      g.remove({ policy });
    }
    for (const phase of PHASES) m.rolloutPhase.remove({ policy, phase });
  }
}
