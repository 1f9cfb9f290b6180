import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeApiError } from '../../../operator/k8s/errors.js';
import { StatusPublisher } from '../../../operator/coordinator/status-publisher.js';
import {
  client,
  createNamespace,
  deleteNamespace,
  events,
  getSwarm,
  installCrds,
  listPods,
  podRunning,
  podTerminated,
  policyPath,
  runOperator,
  sample,
  setPodStatus,
  swarmManifest,
  swarmPath,
  waitFor,
} from './harness.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';
import type { SwarmObject } from './harness.js';
import { agentResponse } from '../../helpers/agent-response.js';

const c = client();
let op: RunningOperator | undefined;
const namespaces: string[] = [];

beforeAll(() => installCrds(c));
afterAll(async () => {
  const t = Date.now();
  await op?.stop();
  if (Date.now() - t > 5000) console.warn(`operator stop took ${Date.now() - t} ms`);
  await Promise.all(namespaces.map((n) => deleteNamespace(c, n)));
});

async function freshNamespace(prefix: string): Promise<string> {
  await op?.stop();
  const ns = await createNamespace(c, prefix);
  namespaces.push(ns);
  op = await runOperator({ namespaces: [ns] });
  return ns;
}

type PolicyObject = {
  metadata: { generation: number };
  status?: {
    effectivePercentage?: number;
    phase?: string;
    observedGeneration?: number;
    currentStep?: number;
    observed?: { v2Swarms: number; v1Swarms: number; fallbacks: number; fallbackRate: number; deliveryRate?: number };
    lastDecision?: { from: number; to: number; reason: string };
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  };
};
const getPolicy = (ns: string, name: string) => c.get<PolicyObject>(policyPath(ns, name));
const policy = (ns: string, name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'RolloutPolicy',
  metadata: { name, namespace: ns },
  spec,
});

/**
 * The operator has seen the policy (its status is written): a swarm created
 * before that would be routed without it (a namespace default applies only
 * once the operator knows it).
 */
const policyReady = (ns: string, name: string) =>
  waitFor(`policy ${name} evaluated`, async () => {
    const p = await getPolicy(ns, name);
    return p.status?.observedGeneration === p.metadata.generation || undefined;
  });

async function createSwarms(ns: string, prefix: string, n: number): Promise<SwarmObject[]> {
  for (let i = 0; i < n; i++) await c.create(swarmPath(ns), swarmManifest(ns, `${prefix}-${i}`, { agents: 2 }));
  return waitFor(
    `${n} swarms routed`,
    async () => {
      const all = (await c.get<{ items: SwarmObject[] }>(swarmPath(ns))).items.filter((s) => s.metadata.name.startsWith(`${prefix}-`));
      return all.length === n && all.every((s) => s.status?.version) ? all : undefined;
    },
    60_000,
    200,
  );
}

/** Plays kubelet and coordinator for a V2 swarm: ready, all agents delivered, pod succeeded. */
async function runToCompletion(ns: string, s: SwarmObject): Promise<void> {
  const pod = await waitFor('pod', async () => (await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === s.metadata.name));
  await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
  const pub = new StatusPublisher({ client: c, namespace: ns, name: s.metadata.name, total: 2 });
  for (const index of [0, 1]) pub.onResponse(agentResponse(index));
  await pub.flush({ status: 'completed' });
  await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
  await waitFor('Succeeded', async () => (await getSwarm(c, ns, s.metadata.name)).status?.phase === 'Succeeded', 20_000);
}

async function failPreflight(ns: string, s: SwarmObject): Promise<void> {
  const pod = await waitFor('pod', async () => (await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === s.metadata.name));
  await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 3, 'not enough space on /dev/shm: 1 MiB free, 64 MiB needed'));
  await waitFor('fallback', async () => (await getSwarm(c, ns, s.metadata.name)).status?.fallback);
}

describe('RolloutPolicy on a real API server', () => {
  it('routes about a tenth of swarms to V2 at 10%, sticks, and a Git edit affects only new swarms', async () => {
    const ns = await freshNamespace('rollout-route');
    await c.create(policyPath(ns), policy(ns, 'main', { v2Percentage: 10, default: true }));
    await policyReady(ns, 'main');
    const swarms = await createSwarms(ns, 'a', 100);
    const v2 = swarms.filter((s) => s.status?.version === 'v2');
    expect(v2.length).toBeGreaterThanOrEqual(3);
    expect(v2.length).toBeLessThanOrEqual(20);
    for (const s of swarms) expect(s.status?.versionReason).toMatch(/^RolloutPolicy main at 10%: bucket \d+ (<|>=) 10$/);
    // Wait for every figure asserted: the policy is reconciled as swarms are routed, so v2Swarms can be final while v1Swarms still counts.
    const p = await waitFor('policy status', async () => {
      const got = await getPolicy(ns, 'main');
      const o = got.status?.observed;
      return o?.v2Swarms === v2.length && o.v1Swarms === 100 - v2.length ? got : undefined;
    });
    expect(p.status).toMatchObject({ effectivePercentage: 10, phase: 'Canary', observed: { v1Swarms: 100 - v2.length, v2Swarms: v2.length } });

    // The Git-style edit: 10 -> 100. Existing swarms keep their version; new ones follow the new spec.
    await c.mergePatch(policyPath(ns, 'main'), { spec: { v2Percentage: 100 } });
    await waitFor('new generation evaluated', async () => (await getPolicy(ns, 'main')).status?.effectivePercentage === 100);
    const later = await createSwarms(ns, 'b', 10);
    expect(later.every((s) => s.status?.version === 'v2')).toBe(true);
    for (const s of swarms) expect((await getSwarm(c, ns, s.metadata.name)).status?.version).toBe(s.status?.version);
    const p2 = await getPolicy(ns, 'main');
    expect(p2.status?.lastDecision).toMatchObject({ from: 10, to: 100, reason: 'spec generation 2: v2Percentage=100' });
    expect(p2.status?.phase).toBe('Full');

    // A restarted operator keeps routing and status.
    await op!.stop();
    op = await runOperator({ namespaces: [ns] });
    // The restarted operator has reconciled the policy (its gauge exists only then) before status is read.
    const restarted = op;
    await waitFor(
      'the restarted operator evaluated the policy',
      async () => sample(await restarted.metrics.registry.metrics(), 'rollout_effective_percentage', { policy: `${ns}/main` }) === 100 || undefined,
    );
    await restarted.controller.idle();
    for (const s of [...swarms, ...later]) expect((await getSwarm(c, ns, s.metadata.name)).status?.version).toBe(s.status?.version);
    expect((await getPolicy(ns, 'main')).status).toMatchObject({ effectivePercentage: 100, observedGeneration: 2 });
  });

  it('waits with too few samples, then promotes through every step as the gates hold', async () => {
    const ns = await freshNamespace('rollout-promote');
    const gates = { minSamples: 2, maxFallbackRate: 5, minDeliveryRate: 95 };
    await c.create(policyPath(ns), policy(ns, 'steps', { v2Percentage: 100, default: true, autoPromote: true, gates, steps: [{ percentage: 100, gates }] }));
    // v2Percentage 100 with no higher step: holds. Use a lower start to see promotion.
    await c.mergePatch(policyPath(ns, 'steps'), {
      spec: {
        v2Percentage: 50,
        steps: [
          { percentage: 80, gates },
          { percentage: 100, gates },
        ],
      },
    });
    await waitFor('at 50', async () => (await getPolicy(ns, 'steps')).status?.effectivePercentage === 50);

    let round = 0;
    let current = 50;
    for (const expected of [80, 100]) {
      // Too few samples: no decision, and a condition says why.
      const p0 = await waitFor('insufficient', async () => {
        const p = await getPolicy(ns, 'steps');
        return p.status?.conditions?.find((x) => x.type === 'GatesEvaluated' && x.reason === 'InsufficientSamples') ? p : undefined;
      });
      expect(p0.status?.conditions?.find((x) => x.type === 'GatesEvaluated')?.message).toMatch(/V2 swarms (observed|finished) in this step/);
      expect(p0.status?.effectivePercentage).toBe(current);
      expect(p0.status?.lastDecision?.to).toBe(current);
      // Enough V2 swarms that finish with full delivery.
      let finished = 0;
      while (finished < 2) {
        const batch = await createSwarms(ns, `r${round++}`, 4);
        // Fewer than minSamples finished: the effective percentage has not moved.
        expect((await getPolicy(ns, 'steps')).status?.effectivePercentage).toBe(current);
        for (const s of batch.filter((x) => x.status?.version === 'v2')) {
          if (finished >= 2) break;
          await runToCompletion(ns, s);
          finished++;
        }
      }
      await waitFor(`promoted to ${expected}`, async () => (await getPolicy(ns, 'steps')).status?.effectivePercentage === expected, 60_000);
      current = expected;
    }
    const p = await getPolicy(ns, 'steps');
    expect(p.status).toMatchObject({ phase: 'Full', currentStep: 1 });
    expect(p.status?.lastDecision?.reason).toMatch(/^promoted: gates hold: fallback 0% <= 5%, delivery 100% >= 95%/);
    const promoted = await waitFor('two Promoted events', async () => {
      const got = (await events(c, ns)).filter((e) => e.reason === 'Promoted');
      return got.length === 2 ? got : undefined;
    });
    expect(promoted.map((e) => e.message.split(':')[0]).sort()).toEqual(['50% -> 80%', '80% -> 100%']);
    // The gauges are set after the status write and its events: wait for them, not for the status.
    await waitFor('gauges of the last promotion', async () => {
      const m = await op!.metrics.registry.metrics();
      return (
        (sample(m, 'rollout_effective_percentage', { policy: `${ns}/steps` }) === 100 &&
          sample(m, 'rollout_phase', { policy: `${ns}/steps`, phase: 'Full' }) === 1) ||
        undefined
      );
    });
  });

  it('rolls back to 0% on a breach, says why with the figures, and never writes spec', async () => {
    const ns = await freshNamespace('rollout-breach');
    await c.create(
      policyPath(ns),
      policy(ns, 'risky', { v2Percentage: 100, default: true, rollbackOnBreach: true, gates: { minSamples: 3, maxFallbackRate: 5 } }),
    );
    await policyReady(ns, 'risky');
    const swarms = await createSwarms(ns, 'x', 3);
    // One fallback in three V2 swarms is a 33% fallback rate: past the 5% gate.
    await failPreflight(ns, swarms[0]!);
    const p = await waitFor('rolled back', async () => {
      const got = await getPolicy(ns, 'risky');
      return got.status?.phase === 'RolledBack' ? got : undefined;
    });
    expect(p.status?.effectivePercentage).toBe(0);
    const rb = p.status?.conditions?.find((x) => x.type === 'RolledBack');
    expect(rb).toMatchObject({ status: 'True', reason: 'GateBreached', message: 'fallback rate 33.33% > 5% over 3 V2 swarms (1 fell back)' });
    const spec = await c.get<{ spec: { v2Percentage: number }; metadata: { generation: number } }>(policyPath(ns, 'risky'));
    expect(spec.spec.v2Percentage).toBe(100);
    expect(spec.metadata.generation).toBe(1);
    const after = await createSwarms(ns, 'y', 5);
    expect(after.every((s) => s.status?.version === 'v1')).toBe(true);
    const ev = await waitFor('RolledBack event', async () => (await events(c, ns)).find((e) => e.reason === 'RolledBack'));
    expect(ev.message).toBe('100% -> 0%: fallback rate 33.33% > 5% over 3 V2 swarms (1 fell back)');
    await waitFor(
      'the fallback rate gauge',
      async () => sample(await op!.metrics.registry.metrics(), 'rollout_fallback_rate', { policy: `${ns}/risky` }) === 33.33 || undefined,
    );
  });

  it('a burst of V2 swarms whose pods wait to be scheduled never rolls the policy back: waiting is no fallback', async () => {
    const ns = await freshNamespace('rollout-burst');
    await c.create(
      policyPath(ns),
      policy(ns, 'burst', { v2Percentage: 100, default: true, rollbackOnBreach: true, gates: { minSamples: 5, maxFallbackRate: 5 } }),
    );
    await policyReady(ns, 'burst');
    const n = 40;
    // All at once, as `kubectl apply` of many manifests does; no node runs their pods.
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        c.create(swarmPath(ns), swarmManifest(ns, `w-${i}`, { agents: 2, coordination: { version: 'auto', fallbackTimeoutSeconds: 1 } })),
      ),
    );
    await waitFor(`${n} pods`, async () => ((await listPods(c, ns)).length === n ? true : undefined), 60_000, 200);
    // One pod not schedulable, as the scheduler reports it.
    const first = (await listPods(c, ns))[0]!;
    await setPodStatus(c, ns, first.metadata.name, {
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: '0/1 nodes are available: 1 Insufficient cpu.',
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      ],
    });
    // Well past fallbackTimeoutSeconds.
    await new Promise((r) => setTimeout(r, 4000));
    const swarms = (await c.get<{ items: SwarmObject[] }>(swarmPath(ns))).items;
    expect(swarms).toHaveLength(n);
    for (const s of swarms) {
      expect([s.metadata.name, s.status?.fallback]).toEqual([s.metadata.name, undefined]);
      expect([s.metadata.name, s.status?.phase, s.status?.activeVersion]).toEqual([s.metadata.name, 'Pending', 'v2']);
    }
    const p = await waitFor('policy observed the burst', async () => {
      const got = await getPolicy(ns, 'burst');
      return got.status?.observed?.v2Swarms === n ? got : undefined;
    });
    expect(p.status).toMatchObject({ effectivePercentage: 100, observed: { v2Swarms: n, fallbacks: 0, fallbackRate: 0 } });
    expect(p.status?.phase).not.toBe('RolledBack');
    expect(p.status?.conditions?.find((x) => x.type === 'RolledBack')?.status ?? 'False').toBe('False');
    expect((await events(c, ns)).filter((e) => e.reason === 'FallbackToV1' || e.reason === 'RolledBack')).toEqual([]);
  });

  it('while paused: a breach rolls nothing back (phase Paused); unpausing resumes the evaluation with the swarms observed so far', async () => {
    const ns = await freshNamespace('rollout-paused');
    await c.create(
      policyPath(ns),
      policy(ns, 'held', { v2Percentage: 100, default: true, paused: true, rollbackOnBreach: true, gates: { minSamples: 2, maxFallbackRate: 5 } }),
    );
    await policyReady(ns, 'held');
    const swarms = await createSwarms(ns, 'p', 2);
    expect(swarms.every((s) => s.status?.version === 'v2')).toBe(true);
    await failPreflight(ns, swarms[0]!);
    const p = await waitFor('breach observed while paused', async () => {
      const got = await getPolicy(ns, 'held');
      return got.status?.observed?.fallbacks === 1 ? got : undefined;
    });
    expect(p.status).toMatchObject({ effectivePercentage: 100, phase: 'Paused', observed: { v2Swarms: 2, fallbacks: 1, fallbackRate: 50 } });
    expect(p.status?.conditions?.find((x) => x.type === 'GatesEvaluated')).toMatchObject({ status: 'False', reason: 'Paused' });
    expect(p.status?.conditions?.find((x) => x.type === 'RolledBack')?.status).toBe('False');
    expect(p.status?.lastDecision).toMatchObject({ from: 0, to: 100, reason: 'spec generation 1: v2Percentage=100' });
    // Still routed at the held 100%, and still observed.
    const more = await createSwarms(ns, 'q', 2);
    expect(more.every((s) => s.status?.version === 'v2')).toBe(true);
    await waitFor('4 V2 swarms observed', async () => (await getPolicy(ns, 'held')).status?.observed?.v2Swarms === 4 || undefined);
    const held = await getPolicy(ns, 'held');
    expect(held.status).toMatchObject({ effectivePercentage: 100, phase: 'Paused' });
    expect((await events(c, ns)).filter((e) => e.reason === 'RolledBack')).toEqual([]);

    // Unpause: the same evaluation goes on, with its four swarms, and rolls back.
    await c.mergePatch(policyPath(ns, 'held'), { spec: { paused: false } });
    const rb = await waitFor('rolled back once unpaused', async () => {
      const got = await getPolicy(ns, 'held');
      return got.status?.phase === 'RolledBack' ? got : undefined;
    });
    expect(rb.status).toMatchObject({ effectivePercentage: 0, observedGeneration: 2 });
    expect(rb.status?.conditions?.find((x) => x.type === 'RolledBack')).toMatchObject({
      status: 'True',
      reason: 'GateBreached',
      message: 'fallback rate 25% > 5% over 4 V2 swarms (1 fell back)',
    });
    const ev = await waitFor('Resumed and RolledBack events', async () => {
      const all = await events(c, ns);
      return all.some((e) => e.reason === 'Resumed') && all.some((e) => e.reason === 'RolledBack') ? all : undefined;
    });
    expect(ev.find((e) => e.reason === 'Resumed')?.message).toBe('spec.paused cleared: resuming at 100% (spec.v2Percentage)');
  });

  it('with rollbackOnBreach false, reports a breach in GatesEvaluated but keeps effectivePercentage', async () => {
    const ns = await freshNamespace('rollout-norollback');
    await c.create(
      policyPath(ns),
      policy(ns, 'tolerant', { v2Percentage: 100, default: true, rollbackOnBreach: false, gates: { minSamples: 2, maxFallbackRate: 5 } }),
    );
    await policyReady(ns, 'tolerant');
    const swarms = await createSwarms(ns, 'x', 2);
    await failPreflight(ns, swarms[0]!);
    const p = await waitFor('breach reported', async () => {
      const got = await getPolicy(ns, 'tolerant');
      return got.status?.conditions?.some((x) => x.type === 'GatesEvaluated' && x.reason === 'GateBreached') ? got : undefined;
    });
    expect(p.status?.conditions?.find((x) => x.type === 'GatesEvaluated')).toMatchObject({
      status: 'True',
      message: 'fallback rate 50% > 5% over 2 V2 swarms (1 fell back)',
    });
    expect(p.status).toMatchObject({
      effectivePercentage: 100,
      phase: 'Full',
      lastDecision: { from: 0, to: 100, reason: 'spec generation 1: v2Percentage=100' },
    });
    expect(p.status?.conditions?.find((x) => x.type === 'RolledBack')).toMatchObject({ status: 'False', reason: 'SpecApplied' });
    const later = await createSwarms(ns, 'y', 3);
    expect(later.every((s) => s.status?.version === 'v2')).toBe(true);
    expect((await getPolicy(ns, 'tolerant')).status?.effectivePercentage).toBe(100);
    expect((await events(c, ns)).filter((e) => e.reason === 'RolledBack')).toEqual([]);
    const metrics = await op!.metrics.registry.metrics();
    expect(sample(metrics, 'rollout_effective_percentage', { policy: `${ns}/tolerant` })).toBe(100);
    expect(sample(metrics, 'rollout_phase', { policy: `${ns}/tolerant`, phase: 'RolledBack' })).toBe(0);
  });

  it('a spec edit after a rollback starts a fresh evaluation from the new spec, with SpecApplied events, and rollout_routed_total counts every routed swarm', async () => {
    const ns = await freshNamespace('rollout-reedit');
    await c.create(policyPath(ns), policy(ns, 'again', { v2Percentage: 100, default: true, gates: { minSamples: 2, maxFallbackRate: 5 } }));
    await policyReady(ns, 'again');
    const first = await createSwarms(ns, 'a', 2);
    await failPreflight(ns, first[0]!);
    await waitFor('rolled back', async () => (await getPolicy(ns, 'again')).status?.phase === 'RolledBack' || undefined);
    const rolledBack = await createSwarms(ns, 'b', 3);
    expect(rolledBack.every((s) => s.status?.version === 'v1')).toBe(true);

    // The Git commit after the rollback: v2Percentage 100 -> 50.
    await c.mergePatch(policyPath(ns, 'again'), { spec: { v2Percentage: 50 } });
    const p = await waitFor('generation 2 evaluated', async () => {
      const got = await getPolicy(ns, 'again');
      return got.status?.observedGeneration === 2 ? got : undefined;
    });
    expect(p.status).toMatchObject({
      effectivePercentage: 50,
      phase: 'Balanced',
      currentStep: -1,
      lastDecision: { from: 0, to: 50, reason: 'spec generation 2: v2Percentage=50' },
    });
    // Generation 1's swarms (and its fallback) are not part of the new evaluation.
    expect(p.status?.observed).toMatchObject({ v2Swarms: 0, fallbacks: 0, fallbackRate: 0 });
    expect(p.status?.conditions?.find((x) => x.type === 'RolledBack')).toMatchObject({
      status: 'False',
      reason: 'SpecApplied',
      message: 'evaluation restarted from the new spec',
    });
    expect(p.status?.conditions?.find((x) => x.type === 'GatesEvaluated')).toMatchObject({ status: 'False', reason: 'InsufficientSamples' });

    const after = await createSwarms(ns, 'c', 20);
    for (const s of after) expect(s.status?.versionReason).toMatch(/^RolloutPolicy again at 50%: bucket \d+ (<|>=) 50$/);
    const v2 = after.filter((s) => s.status?.version === 'v2').length;
    expect(v2).toBeGreaterThan(0);
    expect(v2).toBeLessThan(20);
    await waitFor('new swarms observed', async () => {
      const o = (await getPolicy(ns, 'again')).status?.observed;
      return (o?.v2Swarms === v2 && o.v1Swarms === 20 - v2) || undefined;
    });

    const applied = await waitFor('two SpecApplied events', async () => {
      const got = (await events(c, ns)).filter((e) => e.reason === 'SpecApplied' && e.involvedObject.name === 'again');
      return got.length === 2 ? got : undefined;
    });
    expect(applied.map((e) => `${e.type}: ${e.message}`).sort()).toEqual([
      'Normal: 0% -> 100%: spec generation 1: v2Percentage=100',
      'Normal: 0% -> 50%: spec generation 2: v2Percentage=50',
    ]);

    // Counted once each routing's status write landed, a moment after it: wait for the counts themselves.
    const all = [...first, ...rolledBack, ...after];
    const want = { v2: all.filter((s) => s.status?.version === 'v2').length, v1: all.filter((s) => s.status?.version === 'v1').length };
    const routed = async () => {
      const m = await op!.metrics.registry.metrics();
      return {
        v2: sample(m, 'rollout_routed_total', { policy: `${ns}/again`, version: 'v2' }),
        v1: sample(m, 'rollout_routed_total', { policy: `${ns}/again`, version: 'v1' }),
      };
    };
    await waitFor('every routed swarm counted', async () => (JSON.stringify(await routed()) === JSON.stringify(want) ? true : undefined)).catch(
      () => undefined,
    );
    expect(await routed()).toEqual(want);
  });

  it('rejects invalid policies, naming the field', async () => {
    const ns = await freshNamespace('rollout-invalid');
    const reject = async (spec: Record<string, unknown>) => {
      try {
        await c.create(policyPath(ns), policy(ns, `bad-${Math.random().toString(36).slice(2, 7)}`, spec));
      } catch (e) {
        expect(e).toBeInstanceOf(KubeApiError);
        return (e as KubeApiError).message;
      }
      throw new Error('accepted');
    };
    expect(await reject({ v2Percentage: 150 })).toMatch(/spec\.v2Percentage: Invalid value: 150/);
    expect(await reject({})).toMatch(/spec\.v2Percentage: Required value/);
    expect(await reject({ v2Percentage: 10, steps: [{ percentage: 50 }, { percentage: 20 }] })).toMatch(
      /spec\.steps: Invalid value: .*steps must be in strictly ascending percentage order/,
    );
    expect(await reject({ v2Percentage: 10, gates: { maxFallbackRate: -1 } })).toMatch(/spec\.gates\.maxFallbackRate/);
  });
});
