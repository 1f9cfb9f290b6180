// Flux's status library (kstatus, sigs.k8s.io/cli-utils) reads Swarms and
// RolloutPolicies right, on the real API server: each kind in every phase the
// operator decides, with its kstatus verdict asserted (InProgress, Failed,
// Current). The objects are kept (CAPTURE_TESTDATA=1) as the Argo CD health
// checks' test data: config/argocd/health/*/*/testdata.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ROLLOUT_ANNOTATIONS } from '../../../operator/api/rollout-policy.js';
import { StatusPublisher } from '../../../operator/coordinator/status-publisher.js';
import {
  client,
  createNamespace,
  deleteNamespace,
  getSwarm,
  installCrds,
  listPods,
  podRunning,
  podTerminated,
  policyPath,
  REPO,
  runOperator,
  setPodStatus,
  swarmManifest,
  swarmPath,
  waitFor,
} from '../operator/harness.js';
import { kstatus, kstatusBinary } from './kstatus.js';
import type { KubeObject } from '../../../operator/k8s/client.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';
import type { PodObject, SwarmObject } from '../operator/harness.js';
import { agentResponse } from '../../helpers/agent-response.js';

const c = client();
let ns: string;
let unwatched: string;
let op: RunningOperator;

beforeAll(async () => {
  kstatusBinary();
  await installCrds(c);
  ns = await createNamespace(c, 'kstatus');
  unwatched = await createNamespace(c, 'kstatus-unwatched');
  op = await runOperator({ namespaces: [ns] });
});

afterAll(async () => {
  await op?.stop();
  await Promise.all([deleteNamespace(c, ns), deleteNamespace(c, unwatched)]);
});

/** With CAPTURE_TESTDATA=1: the object as the API server returned it, for the Argo CD health tests. */
function capture(kind: 'Swarm' | 'RolloutPolicy', file: string, obj: KubeObject): void {
  if (process.env.CAPTURE_TESTDATA !== '1') return;
  const dir = join(REPO, 'config/argocd/health/swarm.cfn.dev', kind, 'testdata');
  mkdirSync(dir, { recursive: true });
  const { managedFields: _m, ...metadata } = obj.metadata ?? {};
  const ns = typeof metadata.namespace === 'string' ? metadata.namespace : '';
  // Stable across runs: the random namespace becomes "team-a".
  const text = stringify({ ...obj, metadata }, { lineWidth: 0 }).replaceAll(ns, 'team-a');
  writeFileSync(join(dir, `${file}.yaml`), text);
}

const podOf = async (name: string, attempt = 1): Promise<PodObject | undefined> =>
  (await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === name && p.metadata.labels['swarm.cfn.dev/attempt'] === String(attempt));

const swarmIn = (name: string, phase: string) =>
  waitFor(`${name} ${phase}`, async () => {
    const s = await getSwarm(c, ns, name);
    // The kstatus conditions are written with the phase: wait for both, assert on the same object.
    return s.status?.phase === phase && s.status.conditions?.some((x) => x.type === 'Ready') ? s : undefined;
  });

const conditionsOf = (s: { status?: { conditions?: Array<{ type: string; status: string; reason: string; observedGeneration?: number }> } }) =>
  Object.fromEntries(
    (s.status?.conditions ?? [])
      .filter((x) => ['Ready', 'Reconciling', 'Stalled'].includes(x.type))
      .map((x) => [x.type, `${x.status}/${x.reason}@${x.observedGeneration}`]),
  );

describe('Swarm: kstatus verdict in every phase', () => {
  it('a Swarm the operator has not observed yet is InProgress, not Current', async () => {
    const created = await c.create<SwarmObject>(swarmPath(unwatched), swarmManifest(unwatched, 'unseen'));
    expect(created.status).toEqual({ observedGeneration: 0 });
    expect(kstatus([created])[0]).toMatchObject({ status: 'InProgress', message: 'Swarm generation is 1, but latest observed generation is 0' });
    capture('Swarm', 'not-observed', created);
  });

  it('Pending: InProgress', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'pending', { coordination: { version: 'v1' } }));
    const s = await swarmIn('pending', 'Pending');
    expect(conditionsOf(s)).toEqual({ Ready: 'False/Pending@1', Reconciling: 'True/Pending@1' });
    expect(kstatus([s])[0]).toMatchObject({ status: 'InProgress', message: 'waiting for the coordinator pod pending-v1-1' });
    capture('Swarm', 'pending', s);
  });

  it('Running: InProgress', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'running', { coordination: { version: 'v1' } }));
    await setPodStatus(c, ns, (await waitFor('pod', () => podOf('running'))).metadata.name, podRunning(true));
    const s = await swarmIn('running', 'Running');
    expect(conditionsOf(s)).toEqual({ Ready: 'False/Running@1', Reconciling: 'True/Running@1' });
    expect(kstatus([s])[0]).toMatchObject({ status: 'InProgress', message: 'v1 coordinator pod running-v1-1 is running' });
    capture('Swarm', 'running', s);
  });

  it('FallingBack: InProgress, with the fallback reason', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'falling-back', { coordination: { version: 'v2' } }));
    await setPodStatus(c, ns, (await waitFor('pod', () => podOf('falling-back'))).metadata.name, podTerminated('Failed', 3, '/dev/shm/cfn not writable'));
    const s = await swarmIn('falling-back', 'FallingBack');
    expect(conditionsOf(s)).toEqual({ Ready: 'False/FallingBack@1', Reconciling: 'True/FallingBack@1' });
    expect(kstatus([s])[0]).toMatchObject({ status: 'InProgress', message: 'falling back to v1: /dev/shm/cfn not writable' });
    capture('Swarm', 'falling-back', s);
  });

  it('Succeeded: Current', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'succeeded', { agents: 4, coordination: { version: 'v1' } }));
    const pod = await waitFor('pod', () => podOf('succeeded'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    await swarmIn('succeeded', 'Running');
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'succeeded', total: 4, intervalMs: 10 });
    for (const index of [0, 1, 2, 3]) pub.onResponse(agentResponse(index));
    await pub.flush({ status: 'completed' });
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const s = await swarmIn('succeeded', 'Succeeded');
    expect(conditionsOf(s)).toEqual({ Ready: 'True/Succeeded@1' });
    expect(kstatus([s])[0]).toMatchObject({ status: 'Current', message: 'Resource is Ready' });
    capture('Swarm', 'succeeded', s);
  });

  it('Failed: Failed, with the reason', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'failed', { coordination: { version: 'v2', fallbackEnabled: false } }));
    await setPodStatus(c, ns, (await waitFor('pod', () => podOf('failed'))).metadata.name, podTerminated('Failed', 3, 'bash >= 4 not found'));
    const s = await swarmIn('failed', 'Failed');
    expect(conditionsOf(s)).toEqual({ Ready: 'False/V2Unavailable@1', Stalled: 'True/V2Unavailable@1' });
    expect(kstatus([s])[0]).toMatchObject({ status: 'Failed', message: 'V2 unavailable (bash >= 4 not found) and fallback is disabled' });
    capture('Swarm', 'failed', s);
  });
});

type PolicyObject = KubeObject & {
  metadata: { generation: number; annotations?: Record<string, string> };
  status?: {
    phase?: string;
    observedGeneration?: number;
    requests?: Record<string, { token: string }>;
    conditions?: Array<{ type: string; status: string; reason: string; observedGeneration?: number }>;
  };
};
const policy = (namespace: string, name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'RolloutPolicy',
  metadata: { name, namespace },
  spec,
});
const getPolicy = (name: string) => c.get<PolicyObject>(policyPath(ns, name));
const policyIn = (name: string, phase: string, also: (p: PolicyObject) => boolean = () => true) =>
  waitFor(`${name} ${phase}`, async () => {
    const p = await getPolicy(name);
    return p.status?.observedGeneration === p.metadata.generation && p.status.phase === phase && also(p) ? p : undefined;
  });

describe('RolloutPolicy: kstatus verdict in every phase', () => {
  it('a policy the operator has not observed yet is InProgress', async () => {
    const created = await c.create<PolicyObject>(policyPath(unwatched), policy(unwatched, 'unseen', { v2Percentage: 10 }));
    expect(kstatus([created])[0]).toMatchObject({ status: 'InProgress', message: 'RolloutPolicy generation is 1, but latest observed generation is 0' });
    capture('RolloutPolicy', 'not-observed', created);
  });

  it.each([
    ['baseline', { v2Percentage: 0 }, 'Baseline', 'holding 0%'],
    ['canary', { v2Percentage: 10 }, 'Canary', 'holding 10%'],
    ['balanced', { v2Percentage: 50, steps: [{ percentage: 100 }] }, 'Balanced', 'holding 50%'],
    ['full', { v2Percentage: 100 }, 'Full', 'holding 100%'],
    ['paused', { v2Percentage: 10, steps: [{ percentage: 50 }], autoPromote: true, paused: true }, 'Paused', 'paused: holding 10%'],
  ])('%s (a stable percentage): Current', async (name, spec, phase, message) => {
    await c.create(policyPath(ns), policy(ns, name, spec));
    const p = await policyIn(name, phase);
    expect(conditionsOf(p)).toEqual({ Ready: `True/${phase === 'Paused' ? 'Paused' : 'Stable'}@1` });
    expect(p.status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({ message });
    expect(kstatus([p])[0]).toMatchObject({ status: 'Current', message: 'Resource is Ready' });
    capture('RolloutPolicy', name, p);
  });

  it('evaluating a step it will promote from (autoPromote): InProgress', async () => {
    await c.create(policyPath(ns), policy(ns, 'evaluating', { v2Percentage: 10, steps: [{ percentage: 50 }, { percentage: 100 }], autoPromote: true }));
    const p = await policyIn('evaluating', 'Canary');
    expect(conditionsOf(p)).toEqual({ Ready: 'False/EvaluatingStep@1', Reconciling: 'True/EvaluatingStep@1' });
    expect(kstatus([p])[0]).toMatchObject({
      status: 'InProgress',
      message: 'spec.v2Percentage at 10%, next 50%: 0/20 V2 swarms observed in this step: waiting for more before judging',
    });
    capture('RolloutPolicy', 'evaluating', p);
  });

  it('paused by `kubectl swarm rollout pause` (an annotation, generation unchanged): Current, phase Paused', async () => {
    await c.create(policyPath(ns), policy(ns, 'paused-by-request', { v2Percentage: 10, steps: [{ percentage: 50 }], autoPromote: true }));
    await policyIn('paused-by-request', 'Canary');
    await c.mergePatch(policyPath(ns, 'paused-by-request'), { metadata: { annotations: { [ROLLOUT_ANNOTATIONS.paused]: 'true' } } });
    const p = await policyIn('paused-by-request', 'Paused');
    expect(p.metadata.generation).toBe(1);
    expect(kstatus([p])[0]).toMatchObject({ status: 'Current' });
    capture('RolloutPolicy', 'paused-by-request', p);
  });

  it('aborted (RolledBack): Failed, with the reason', async () => {
    await c.create(policyPath(ns), policy(ns, 'aborted', { v2Percentage: 50 }));
    await policyIn('aborted', 'Balanced');
    await c.mergePatch(policyPath(ns, 'aborted'), { metadata: { annotations: { [ROLLOUT_ANNOTATIONS.abort]: '2026-12-04T12:00:00.000Z' } } });
    const p = await policyIn('aborted', 'RolledBack');
    expect(conditionsOf(p)).toEqual({ Ready: 'False/Aborted@1', Stalled: 'True/Aborted@1' });
    expect(kstatus([p])[0]).toMatchObject({
      status: 'Failed',
      message: 'V2 at 0% for new swarms: aborted by request (kubectl swarm rollout abort): new swarms run V1 until the next spec change or a retry',
    });
    capture('RolloutPolicy', 'rolled-back', p);
  });

  it('a second namespace default that routes nothing: Failed', async () => {
    await c.create(policyPath(ns), policy(ns, 'default-a', { v2Percentage: 10, default: true }));
    await policyIn('default-a', 'Canary');
    await c.create(policyPath(ns), policy(ns, 'default-b', { v2Percentage: 20, default: true }));
    const p = await policyIn('default-b', 'Canary', (x) => x.status?.conditions?.some((y) => y.type === 'Stalled') ?? false);
    expect(kstatus([p])[0]).toMatchObject({ status: 'Failed', message: 'default-a is the namespace default (the oldest marked default)' });
  });

  it('a spec change (a Git commit) is InProgress until the operator observes it', async () => {
    const before = await getPolicy('canary');
    const edited = await c.mergePatch<PolicyObject>(policyPath(ns, 'canary'), { spec: { v2Percentage: 20 } });
    expect(edited.metadata.generation).toBe(before.metadata.generation + 1);
    // The answer to the edit itself: the operator cannot have seen it yet.
    expect(kstatus([edited])[0]).toMatchObject({
      status: 'InProgress',
      message: `RolloutPolicy generation is ${edited.metadata.generation}, but latest observed generation is ${before.metadata.generation}`,
    });
    const p = await policyIn(
      'canary',
      'Canary',
      (x) => x.status?.conditions?.find((y) => y.type === 'Ready')?.observedGeneration === edited.metadata.generation,
    );
    expect(kstatus([p])[0]).toMatchObject({ status: 'Current' });
  });
});
