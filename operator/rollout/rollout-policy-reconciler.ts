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

type Cond = (type: string, st: 'True' | 'False', reason: string, message: string) => void;

export class RolloutPolicyReconciler {
  constructor(private readonly deps: RolloutPolicyReconcilerDeps) {}

  reconcile = async (key: string): Promise<ReconcileResult | void> => {
    const raw = this.deps.getPolicy(key);
    if (!raw) return this.forgetMetrics(key);
    const parsed = policySchema.safeParse(raw);
    if (!parsed.success)
      throw new PermanentError(`${key}: invalid RolloutPolicy: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const run = new PolicyRun(this.deps, withRequestedPause(parsed.data), this.deps.now?.() ?? new Date());
    const result = await run.reconcile((policy, cond) => this.defaultConflict(policy, cond));
    this.observeMetrics(run.policy, run.status);
    return result;
  };

  /** Two defaults in one namespace: the oldest wins, the others say so. */
  private defaultConflict(policy: RolloutPolicy, cond: Cond): void {
    if (!policy.spec.default) return;
    const winner = defaultPolicy(parsePolicies(this.deps.listPolicies(policy.metadata.namespace ?? 'default')));
    if (winner && winner.metadata.name !== policy.metadata.name)
      cond('DefaultActive', 'False', 'Conflict', `${winner.metadata.name} is the namespace default (the oldest marked default)`);
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
    for (const g of [
      m.rolloutEffectivePercentage,
      m.rolloutFallbackRate,
      m.rolloutDeliveryRate,
      m.rolloutObservedV2Swarms,
      m.rolloutObservedFinishedV2Swarms,
      m.rolloutGateMaxFallbackRate,
      m.rolloutGateMinDeliveryRate,
      m.rolloutGateMinSamples,
    ]) {
      g.remove({ policy });
    }
    for (const phase of PHASES) m.rolloutPhase.remove({ policy, phase });
  }
}

/**
 * One reconcile of one policy: follow its spec, handle its requests, observe
 * its swarms, judge the step, then write status and record events.
 */
class PolicyRun {
  readonly status: RolloutPolicyStatus;
  private readonly events: Array<[EventType, string, string]> = [];
  private readonly ns: string;
  private readonly gen: number | undefined;
  private readonly specKey: string;

  constructor(
    private readonly deps: RolloutPolicyReconcilerDeps,
    readonly policy: RolloutPolicy,
    private readonly now: Date,
  ) {
    this.status = structuredClone(policy.status ?? {});
    this.ns = policy.metadata.namespace ?? 'default';
    this.gen = policy.metadata.generation;
    this.specKey = rolloutSpecKey(policy.spec);
  }

  async reconcile(defaultConflict: (policy: RolloutPolicy, cond: Cond) => void): Promise<ReconcileResult | void> {
    this.followSpec();
    handleRequests({
      policy: this.policy,
      status: this.status,
      now: this.now,
      specKey: this.specKey,
      decide: this.decide,
      cond: this.cond,
      event: (type, reason, message) => this.events.push([type, reason, message]),
    });
    const requeue = this.judgeStep();
    this.setPhase();
    defaultConflict(this.policy, this.cond);
    this.status.conditions = applyKstatus(this.status.conditions, policyKstatus(this.policy.spec, this.status), this.gen, this.now);
    await this.writeStatus();
    await this.recordEvents();
    return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
  }

  private readonly cond: Cond = (type, st, reason, message) => {
    this.status.conditions = setCondition(this.status.conditions, { type, status: st, reason, message }, this.gen, this.now);
  };

  private readonly decide = (to: number, reason: string, type: EventType, eventReason: string): void => {
    const status = this.status;
    const from = status.effectivePercentage ?? 0;
    status.lastDecision = { time: kubeTime(this.now), from, to, reason };
    status.effectivePercentage = to;
    this.events.push([type, eventReason, `${from}% -> ${to}%: ${reason}`]);
    this.deps.logger.info({ namespace: this.ns, name: this.policy.metadata.name, from, to, reason }, 'rollout decision');
  };

  private rolledBack(): boolean {
    return findCondition(this.status.conditions, 'RolledBack')?.status === 'True';
  }

  /** Where the evaluation stands, for messages. */
  private where(): string {
    const st = this.status.currentStep ?? -1;
    if (this.rolledBack()) return 'rolled back';
    return st >= 0 ? `step ${st + 1} of ${this.policy.spec.steps?.length ?? 0}` : 'spec.v2Percentage';
  }

  /** A new generation: only `paused` changed (hold or go on), or a new spec (restart the evaluation from it). */
  private followSpec(): void {
    const { status, policy, gen, specKey } = this;
    const evaluation = status.evaluation;
    if (status.observedGeneration !== gen && evaluation?.specKey === specKey && status.effectivePercentage !== undefined) {
      // Only `paused` changed: the evaluation in progress holds (pause) or goes on (unpause), as it stands.
      status.observedGeneration = gen;
      const c = findCondition(status.conditions, 'RolledBack');
      if (c) this.cond('RolledBack', c.status === 'True' ? 'True' : 'False', c.reason, c.message);
      const [reason, message] = policy.spec.paused
        ? ['Paused', `spec.paused: holding ${status.effectivePercentage}% (${this.where()})`]
        : ['Resumed', `spec.paused cleared: resuming at ${status.effectivePercentage}% (${this.where()})`];
      this.events.push(['Normal', reason, message]);
      this.deps.logger.info(
        { namespace: this.ns, name: policy.metadata.name, effective: status.effectivePercentage, paused: policy.spec.paused },
        'rollout paused or resumed',
      );
    } else if (status.observedGeneration !== gen) {
      // A spec change (a Git commit) restarts the evaluation from the spec.
      this.decide(policy.spec.v2Percentage, `spec generation ${gen ?? '?'}: v2Percentage=${policy.spec.v2Percentage}`, 'Normal', 'SpecApplied');
      status.currentStep = -1;
      status.stepStartTime = this.now.toISOString();
      status.observedGeneration = gen;
      this.cond('RolledBack', 'False', 'SpecApplied', 'evaluation restarted from the new spec');
      status.evaluation = { generation: gen ?? 0, specKey };
    } else if (evaluation?.specKey !== specKey) {
      // Evaluated before the operator recorded which spec it evaluated: this one.
      status.evaluation = { generation: gen ?? 0, specKey };
    }
  }

  /** Observes the swarms routed since the evaluation began and judges the current step's gates; the requeue it needs. */
  private judgeStep(): number | undefined {
    const { status, policy, now } = this;
    const step = status.currentStep ?? -1;
    const gates = gatesOf(policy, step);
    const since = status.stepStartTime ?? now.toISOString();
    const rolledBack = this.rolledBack();
    // Rolled back: the figures that caused it stay in status until the next spec change.
    const observed =
      rolledBack && status.observed
        ? status.observed
        : observe(policy, routedSince(this.deps.listSwarms(this.ns), status.evaluation?.since), step, gates, status.evaluation?.generation ?? this.gen);
    status.observed = observed;
    if (rolledBack) return undefined;
    const verdict = judge(policy, observed, gates, step, now.getTime() - Date.parse(since));
    switch (verdict.kind) {
      case 'paused':
        this.cond('GatesEvaluated', 'False', 'Paused', 'spec.paused is true: holding the effective percentage');
        return undefined;
      case 'insufficient':
        this.cond('GatesEvaluated', 'False', 'InsufficientSamples', verdict.message);
        return undefined;
      case 'breach':
        this.cond('GatesEvaluated', 'True', 'GateBreached', verdict.message);
        if (policy.spec.rollbackOnBreach) {
          this.decide(0, verdict.message, 'Warning', 'RolledBack');
          this.cond('RolledBack', 'True', 'GateBreached', verdict.message);
        }
        return undefined;
      case 'hold':
        this.cond('GatesEvaluated', 'True', 'GatesHold', verdict.message);
        return policy.spec.autoPromote ? (this.deps.resyncMs ?? 10_000) : undefined;
      case 'promote': {
        const to = policy.spec.steps![verdict.toStep]!.percentage;
        this.cond('GatesEvaluated', 'True', 'GatesHold', verdict.message);
        this.decide(to, `promoted: ${verdict.message}`, 'Normal', 'Promoted');
        status.currentStep = verdict.toStep;
        status.stepStartTime = now.toISOString();
        status.observed = { v2Swarms: 0, v1Swarms: 0, fallbacks: 0, fallbackRate: 0, finishedV2Swarms: 0 };
        // Judge the new step at once (it starts with no samples), not on the next swarm event.
        return 0;
      }
    }
  }

  private setPhase(): void {
    const effective = this.status.effectivePercentage ?? this.policy.spec.v2Percentage;
    this.status.phase = this.rolledBack() ? 'RolledBack' : this.policy.spec.paused ? 'Paused' : phaseOf(effective);
  }

  private async writeStatus(): Promise<void> {
    const { policy, status, ns } = this;
    if (JSON.stringify(status) === JSON.stringify(policy.status ?? {})) return;
    await this.deps.client.apply(
      resourcePath({ ...ROLLOUT_POLICY_RESOURCE, namespace: ns, name: policy.metadata.name }),
      {
        apiVersion: GROUP_VERSION,
        kind: 'RolloutPolicy',
        metadata: { name: policy.metadata.name, namespace: ns, resourceVersion: policy.metadata.resourceVersion },
        status,
      },
      { fieldManager: POLICY_FIELD_MANAGER, force: true, subresource: 'status' },
    );
  }

  private async recordEvents(): Promise<void> {
    const { policy, ns } = this;
    for (const [type, reason, message] of this.events) {
      await this.deps.recorder.record(
        {
          apiVersion: GROUP_VERSION,
          kind: 'RolloutPolicy',
          name: policy.metadata.name,
          namespace: ns,
          ...(policy.metadata.uid ? { uid: policy.metadata.uid } : {}),
        },
        type,
        reason,
        message,
      );
    }
  }
}
