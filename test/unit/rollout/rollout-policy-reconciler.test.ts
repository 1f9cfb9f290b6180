// The RolloutPolicy reconciler over a stand-in API server: one policy object
// whose status the reconciler applies and whose spec the test edits the way a
// Git commit does (generation + 1). Swarms are routed by the real RolloutRouter
// against the policy as the API server holds it.
import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { swarm as swarmSchema } from '../../../operator/api/swarm.js';
import { createOperatorMetrics } from '../../../operator/observability/metrics.js';
import { RolloutPolicyReconciler } from '../../../operator/rollout/rollout-policy-reconciler.js';
import { parsePolicies, RolloutRouter } from '../../../operator/rollout/rollout-router.js';
import type { RolloutPolicyStatus } from '../../../operator/api/rollout-policy.js';
import type { Swarm } from '../../../operator/api/swarm.js';
import type { KubeClient, KubeObject } from '../../../operator/k8s/client.js';
import type { EventRecorder } from '../../../operator/k8s/events.js';

type Ev = { type: string; reason: string; message: string };
const FALLBACK = { fallback: { from: 'v2', to: 'v1', reason: 'preflight', time: '2026-11-25T01:00:00Z' } };
const SUCCEEDED = { phase: 'Succeeded', deliveryRate: 100 };

class World {
  policy: KubeObject & { spec: Record<string, unknown>; status?: RolloutPolicyStatus };
  readonly swarms: Swarm[] = [];
  readonly events: Ev[] = [];
  readonly metrics = createOperatorMetrics({ defaultMetrics: false });
  private clock = Date.parse('2026-11-25T01:00:00Z');
  private rv = 1;
  readonly router = new RolloutRouter(() => parsePolicies([this.policy]));
  /** The policy was deleted: the cache no longer has it. */
  deleted = false;
  private readonly reconciler: RolloutPolicyReconciler;

  constructor(spec: Record<string, unknown>, others: readonly KubeObject[] = []) {
    this.policy = {
      apiVersion: 'swarm.cfn.dev/v1alpha1',
      kind: 'RolloutPolicy',
      metadata: { name: 'p', namespace: 'ns', uid: randomUUID(), generation: 1, resourceVersion: '1', creationTimestamp: '2026-11-25T00:00:00Z' },
      spec: { default: true, ...spec },
    };
    const client = {
      // Status subresource, one writer: its applied status replaces the old one.
      apply: async (_path: string, obj: { status: RolloutPolicyStatus }) => {
        this.policy = {
          ...this.policy,
          metadata: { ...this.policy.metadata, resourceVersion: String(++this.rv) },
          status: JSON.parse(JSON.stringify(obj.status)),
        };
        return this.policy;
      },
    } as unknown as KubeClient;
    const recorder = {
      record: async (_o: unknown, type: string, reason: string, message: string) => void this.events.push({ type, reason, message }),
    } as unknown as EventRecorder;
    this.reconciler = new RolloutPolicyReconciler({
      client,
      getPolicy: () => (this.deleted ? undefined : this.policy),
      listPolicies: () => [this.policy, ...others],
      listSwarms: () => this.swarms,
      recorder,
      logger: pino({ level: 'silent' }),
      metrics: this.metrics,
      now: () => new Date(this.clock),
    });
  }

  get status(): RolloutPolicyStatus {
    return this.policy.status ?? {};
  }

  condition(type: string) {
    return this.status.conditions?.find((c) => c.type === type);
  }

  async reconcile(): Promise<void> {
    this.clock += 1000;
    await this.reconciler.reconcile('ns/p');
  }

  /** A Git commit: the spec changes, the API server bumps the generation. */
  edit(patch: Record<string, unknown>): void {
    const g = Number(this.policy.metadata?.generation ?? 0);
    this.policy = {
      ...this.policy,
      metadata: { ...this.policy.metadata, generation: g + 1, resourceVersion: String(++this.rv) },
      spec: { ...this.policy.spec, ...patch },
    };
  }

  /** New swarms routed the way the swarm reconciler does; each gets `status` on top when routed to `version`. */
  route(version: 'v1' | 'v2', n: number, status: Record<string, unknown> = {}): Swarm[] {
    const out: Swarm[] = [];
    for (let tries = 0; out.length < n; tries++) {
      if (tries > 10_000) throw new Error(`no ${version} routing at ${this.router.route(this.make())?.reason}`);
      const s = this.make();
      const d = this.router.route(s)!;
      if (d.version !== version) continue;
      this.clock += 10;
      s.status = {
        version: d.version,
        versionReason: d.reason,
        ...(d.rollout ? { rollout: { ...d.rollout, time: new Date(this.clock).toISOString() } } : {}),
        ...status,
      } as Swarm['status'];
      out.push(s);
    }
    this.swarms.push(...out);
    return out;
  }

  private make(): Swarm {
    const uid = randomUUID();
    return swarmSchema.parse({
      apiVersion: 'swarm.cfn.dev/v1alpha1',
      kind: 'Swarm',
      metadata: { name: `s-${uid.slice(0, 8)}`, namespace: 'ns', uid },
      spec: { objective: 'x', agents: 1, agent: { command: ['true'] } },
    });
  }
}

const gates = { minSamples: 2, maxFallbackRate: 5, minDeliveryRate: 95 };

describe('RolloutPolicyReconciler: spec.paused', () => {
  it('makes no rollback decision while paused (phase Paused), and unpausing resumes evaluation with the figures observed so far', async () => {
    const w = new World({ v2Percentage: 100, gates, rollbackOnBreach: true, paused: true });
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 100, phase: 'Paused', observedGeneration: 1 });
    const specApplied = w.status.lastDecision;
    w.route('v2', 1, FALLBACK);
    w.route('v2', 1, SUCCEEDED);
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 100, phase: 'Paused', observed: { v2Swarms: 2, fallbacks: 1, fallbackRate: 50 } });
    expect(w.status.lastDecision).toEqual(specApplied);
    expect(w.condition('GatesEvaluated')).toMatchObject({
      status: 'False',
      reason: 'Paused',
      message: 'spec.paused is true: holding the effective percentage',
    });
    expect(w.condition('RolledBack')?.status).toBe('False');
    expect(w.events.map((e) => e.reason)).toEqual(['SpecApplied']);
    expect(w.route('v2', 1)).toHaveLength(1);

    w.edit({ paused: false });
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 0, phase: 'RolledBack', observedGeneration: 2 });
    expect(w.condition('RolledBack')).toMatchObject({
      status: 'True',
      reason: 'GateBreached',
      message: 'fallback rate 33.33% > 5% over 3 V2 swarms (1 fell back)',
    });
    expect(w.events.map((e) => e.reason)).toEqual(['SpecApplied', 'Resumed', 'RolledBack']);
    expect(w.events[1]?.message).toBe('spec.paused cleared: resuming at 100% (spec.v2Percentage)');
  });

  it('makes no promotion while paused, and promotes once unpaused', async () => {
    const w = new World({ v2Percentage: 50, steps: [{ percentage: 100, gates }], gates, autoPromote: true, paused: true });
    await w.reconcile();
    w.route('v2', 3, SUCCEEDED);
    await w.reconcile();
    await w.reconcile();
    expect(w.status).toMatchObject({
      effectivePercentage: 50,
      currentStep: -1,
      phase: 'Paused',
      observed: { v2Swarms: 3, finishedV2Swarms: 3, deliveryRate: 100 },
    });
    w.edit({ paused: false });
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 100, currentStep: 0, phase: 'Full' });
    expect(w.status.lastDecision).toMatchObject({ from: 50, to: 100 });
    expect(w.status.lastDecision?.reason).toMatch(/^promoted: gates hold: fallback 0% <= 5%, delivery 100% >= 95% over 3 V2 swarms/);
  });

  it('regression: pausing reset effectivePercentage to spec.v2Percentage (a promoted step is held, and routing follows it)', async () => {
    const w = new World({ v2Percentage: 10, steps: [{ percentage: 50, gates }], gates, autoPromote: true });
    await w.reconcile();
    w.route('v2', 2, SUCCEEDED);
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 50, currentStep: 0, phase: 'Balanced' });
    const promotion = w.status.lastDecision;

    w.edit({ paused: true });
    // Before the operator saw the commit: routed at the held 50% and step, not at spec.v2Percentage.
    expect(w.route('v2', 1)[0]!.status?.rollout).toMatchObject({ percentage: 50, step: 0, generation: 2 });
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 50, currentStep: 0, phase: 'Paused', observedGeneration: 2 });
    expect(w.status.lastDecision).toEqual(promotion);
    expect(w.events.map((e) => e.reason)).toEqual(['SpecApplied', 'Promoted', 'Paused']);
    expect(w.events.at(-1)?.message).toBe('spec.paused: holding 50% (step 1 of 1)');
    // The evaluation still counts from generation 1: the swarms routed before the pause stay in its window.
    expect(w.status.evaluation).toEqual({ generation: 1, specKey: expect.stringMatching(/^[0-9a-f]{16}$/) });
  });

  it('regression: pausing a rolled-back policy routed V2 again (it stays at 0% and RolledBack)', async () => {
    const w = new World({ v2Percentage: 100, gates });
    await w.reconcile();
    w.route('v2', 2, FALLBACK);
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 0, phase: 'RolledBack' });
    w.edit({ paused: true });
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 0, phase: 'RolledBack', observedGeneration: 2 });
    expect(w.route('v1', 5)).toHaveLength(5);
    w.edit({ paused: false });
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 0, phase: 'RolledBack', observedGeneration: 3 });
  });

  it('a commit that pauses and changes v2Percentage applies the new percentage, held', async () => {
    const w = new World({ v2Percentage: 10, steps: [{ percentage: 50, gates }], gates, autoPromote: true });
    await w.reconcile();
    w.edit({ paused: true, v2Percentage: 30 });
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 30, currentStep: -1, phase: 'Paused' });
    expect(w.status.lastDecision).toMatchObject({ from: 10, to: 30, reason: 'spec generation 2: v2Percentage=30' });
  });
});

describe('RolloutPolicyReconciler: rollbackOnBreach false', () => {
  it('reports a breach in GatesEvaluated but keeps effectivePercentage, makes no decision and does not promote', async () => {
    const w = new World({ v2Percentage: 50, steps: [{ percentage: 100, gates }], gates, autoPromote: true, rollbackOnBreach: false });
    await w.reconcile();
    const specApplied = w.status.lastDecision;
    w.route('v2', 2, SUCCEEDED);
    w.route('v2', 1, FALLBACK);
    await w.reconcile();
    expect(w.status).toMatchObject({
      effectivePercentage: 50,
      currentStep: -1,
      phase: 'Balanced',
      observed: { v2Swarms: 3, fallbacks: 1, fallbackRate: 33.33 },
    });
    expect(w.condition('GatesEvaluated')).toMatchObject({
      status: 'True',
      reason: 'GateBreached',
      message: 'fallback rate 33.33% > 5% over 3 V2 swarms (1 fell back)',
    });
    expect(w.condition('RolledBack')).toMatchObject({ status: 'False', reason: 'SpecApplied' });
    expect(w.status.lastDecision).toEqual(specApplied);
    expect(w.events.map((e) => e.reason)).toEqual(['SpecApplied']);
    // New swarms still go to V2 at 50%.
    expect(w.route('v2', 1)[0]!.status?.rollout).toMatchObject({ percentage: 50 });
    expect(await w.metrics.registry.getSingleMetricAsString('rollout_effective_percentage')).toMatch(/rollout_effective_percentage\{policy="ns\/p"\} 50/);
  });
});

describe('RolloutPolicyReconciler: too few samples', () => {
  it('leaves effectivePercentage and lastDecision unchanged, with InsufficientSamples, even on breaching figures', async () => {
    const w = new World({ v2Percentage: 10, steps: [{ percentage: 50 }], gates: { ...gates, minSamples: 5 }, autoPromote: true, rollbackOnBreach: true });
    await w.reconcile();
    const specApplied = w.status.lastDecision;
    w.route('v2', 2, SUCCEEDED);
    w.route('v2', 2, FALLBACK);
    await w.reconcile();
    expect(w.status.effectivePercentage).toBe(10);
    expect(w.status).toMatchObject({ currentStep: -1, phase: 'Canary', observed: { v2Swarms: 4, fallbackRate: 50 } });
    expect(w.status.lastDecision).toEqual(specApplied);
    expect(w.condition('GatesEvaluated')).toMatchObject({
      status: 'False',
      reason: 'InsufficientSamples',
      message: '4/5 V2 swarms observed in this step: waiting for more before judging',
    });
    expect(w.events.map((e) => e.reason)).toEqual(['SpecApplied']);
  });
});

describe('RolloutPolicyReconciler: a spec edit after a rollback', () => {
  it('starts a fresh evaluation from the new spec: new percentage, RolledBack=False, no old figures, SpecApplied event', async () => {
    const w = new World({ v2Percentage: 100, gates });
    await w.reconcile();
    expect(w.events).toEqual([{ type: 'Normal', reason: 'SpecApplied', message: '0% -> 100%: spec generation 1: v2Percentage=100' }]);
    w.route('v2', 2, FALLBACK);
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 0, phase: 'RolledBack', observed: { v2Swarms: 2, fallbacks: 2 } });
    await w.reconcile();
    expect(w.status.effectivePercentage).toBe(0);

    w.edit({ v2Percentage: 20 });
    // Routed at once with the new spec, even before the operator saw it.
    expect(w.route('v1', 1)[0]!.status?.rollout).toMatchObject({ percentage: 20, generation: 2, step: -1 });
    await w.reconcile();
    expect(w.status).toMatchObject({
      effectivePercentage: 20,
      currentStep: -1,
      phase: 'Canary',
      observedGeneration: 2,
      observed: { v2Swarms: 0, v1Swarms: 1, fallbacks: 0 },
    });
    expect(w.status.lastDecision).toMatchObject({ from: 0, to: 20, reason: 'spec generation 2: v2Percentage=20' });
    expect(w.condition('RolledBack')).toMatchObject({ status: 'False', reason: 'SpecApplied', observedGeneration: 2 });
    expect(w.condition('GatesEvaluated')).toMatchObject({ status: 'False', reason: 'InsufficientSamples' });
    expect(w.events.map((e) => `${e.type} ${e.reason}: ${e.message}`).slice(-2)).toEqual([
      'Warning RolledBack: 100% -> 0%: fallback rate 100% > 5% over 2 V2 swarms (2 fell back)',
      'Normal SpecApplied: 0% -> 20%: spec generation 2: v2Percentage=20',
    ]);

    // The fresh evaluation judges the new generation's swarms: healthy ones hold.
    w.route('v2', 2, SUCCEEDED);
    await w.reconcile();
    expect(w.status).toMatchObject({ effectivePercentage: 20, phase: 'Canary', observed: { v2Swarms: 2, fallbacks: 0, deliveryRate: 100 } });
    expect(w.condition('GatesEvaluated')).toMatchObject({ status: 'True', reason: 'GatesHold' });
  });
});

describe('the namespace default', () => {
  const otherDefault = (name: string, created: string): KubeObject =>
    ({
      apiVersion: 'swarm.cfn.dev/v1alpha1',
      kind: 'RolloutPolicy',
      metadata: { name, namespace: 'ns', uid: randomUUID(), generation: 1, resourceVersion: '1', creationTimestamp: created },
      spec: { default: true, v2Percentage: 0 },
    }) as KubeObject;

  it('DefaultActive=False with the winner named when an older policy is also marked default; True for the oldest', async () => {
    const loser = new World({ v2Percentage: 10 }, [otherDefault('older', '2026-11-24T00:00:00Z')]);
    await loser.reconcile();
    expect(loser.condition('DefaultActive')).toMatchObject({
      status: 'False',
      reason: 'Conflict',
      message: 'older is the namespace default (the oldest marked default)',
    });
    const winner = new World({ v2Percentage: 10 }, [otherDefault('newer', '2026-11-26T00:00:00Z')]);
    await winner.reconcile();
    expect(winner.condition('DefaultActive')).toMatchObject({ status: 'True', reason: 'Default' });
  });
});

describe('RolloutPolicyReconciler: metrics for alerts', () => {
  const series = async (w: World) => {
    const out: Record<string, number> = {};
    for (const m of await w.metrics.registry.getMetricsAsJSON()) {
      if (!m.name.startsWith('rollout_') || m.name === 'rollout_routed_total') continue;
      for (const v of m.values as Array<{ labels: Record<string, string>; value: number }>) {
        if (m.name === 'rollout_phase' && v.value === 0) continue;
        out[`${m.name}${m.name === 'rollout_phase' ? `:${v.labels.phase}` : ''}`] = v.value;
      }
    }
    return out;
  };

  it('exports the observed fallback and delivery rates, their samples and the gates of the current step, per policy, and drops them when the policy is deleted', async () => {
    const stepGates = { minSamples: 3, maxFallbackRate: 10, minDeliveryRate: 90 };
    const w = new World({ v2Percentage: 50, gates, steps: [{ percentage: 100, gates: stepGates }] });
    await w.reconcile();
    // No V2 swarm finished yet: no delivery rate at all (not a 0 that would page).
    expect(await series(w)).toEqual({
      rollout_effective_percentage: 50,
      rollout_fallback_rate: 0,
      rollout_observed_v2_swarms: 0,
      rollout_observed_finished_v2_swarms: 0,
      rollout_gate_max_fallback_rate: 5,
      rollout_gate_min_delivery_rate: 95,
      rollout_gate_min_samples: 2,
      'rollout_phase:Balanced': 1,
    });
    w.route('v2', 3, { phase: 'Succeeded', deliveryRate: 97.8 });
    w.route('v2', 1, FALLBACK);
    await w.reconcile();
    expect(await series(w)).toMatchObject({
      rollout_fallback_rate: 25,
      rollout_delivery_rate: 97.8,
      rollout_observed_v2_swarms: 4,
      rollout_observed_finished_v2_swarms: 3,
    });

    w.deleted = true;
    await w.reconcile();
    expect(await series(w)).toEqual({});
  });
});
