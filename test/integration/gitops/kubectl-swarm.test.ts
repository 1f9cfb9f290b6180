// `kubectl swarm` against the real API server with the operator running:
// the live view of a Swarm (-w until it finishes, exit codes), a policy's
// view, and the requests GitOps leaves to the operator, which never touch the
// spec (metadata.generation and spec compared before and after).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { runCli } from '../../../operator/cli/main.js';
import { ROLLOUT_ANNOTATIONS } from '../../../operator/api/rollout-policy.js';
import { StatusPublisher } from '../../../operator/coordinator/status-publisher.js';
import { kubectlBin } from '../../unit/packaging/tools.js';
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
import { captureIo } from '../../helpers/capture.js';
import type { Capture } from '../../helpers/capture.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';
import type { PodObject } from '../operator/harness.js';
import { agentResponse } from '../../helpers/agent-response.js';

/** Runs `kubectl swarm ARGS` in-process; `out` shows what it printed so far. */
function start(args: readonly string[], isTTY = false): { out: Capture; done: Promise<{ code: number; out: string; err: string }> } {
  const io = captureIo({ ...process.env }, isTTY);
  return { out: io.out, done: runCli(['swarm', ...args], io).then((code) => ({ code, out: io.out.text, err: io.err.text })) };
}

const kubectlSwarm = (args: readonly string[], isTTY = false) => start(args, isTTY).done;

const c = client();
let ns: string;
let op: RunningOperator | undefined;

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'kubectl-swarm');
  op = await runOperator({ namespaces: [ns] });
});

afterAll(async () => {
  await op?.stop();
  await deleteNamespace(c, ns);
});

const podOf = async (name: string, attempt = 1): Promise<PodObject | undefined> =>
  (await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === name && p.metadata.labels['swarm.cfn.dev/attempt'] === String(attempt));

const response = (index: number, ok = true) =>
  agentResponse(index, { status: ok ? ('completed' as const) : ('failed' as const), exitCode: ok ? 0 : 1, error: ok ? null : 'boom' });

describe('kubectl swarm get', () => {
  it('shows phase, health, version, agents, delivery, pods and events; -o json the same as data', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'shown', { agents: 4, coordination: { version: 'v1' } }));
    const pod = await waitFor('pod', () => podOf('shown'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'shown', total: 4, intervalMs: 10 });
    pub.onResponse(response(0));
    pub.onResponse(response(1, false));
    await pub.flush();
    // The view is asserted on what it shows: wait for the operator's Reconciling condition and the coordinator's counts together.
    await waitFor('Running with progress', async () => {
      const s = await getSwarm(c, ns, 'shown');
      const reconciling = s.status?.conditions?.find((x) => x.type === 'Reconciling');
      return reconciling?.reason === 'Running' && s.status?.agents?.completed === 1 ? true : undefined;
    });
    const human = await kubectlSwarm(['get', 'shown', '-n', ns]);
    expect(human.code).toBe(0);
    expect(human.out).toContain(`Name:      ${ns}/shown\n`);
    expect(human.out).toMatch(/Phase: +Running\n/);
    expect(human.out).toMatch(/Health: +Reconciling \(Running\): v1 coordinator pod shown-v1-1 is running\n/);
    expect(human.out).toMatch(/Version: +v1: spec\.coordination\.version=v1\n/);
    expect(human.out).toMatch(/Agents: +2\/4 done: 1 completed, 1 failed\n/);
    expect(human.out).toMatch(/Fallback: +none\n/);
    expect(human.out).toMatch(/ {2}shown-v1-1 +v1 +Running +true +- +-\n/);
    expect(human.out).toMatch(/Normal +VersionSelected +coordination v1: spec\.coordination\.version=v1/);
    const json = await kubectlSwarm(['get', 'shown', '-n', ns, '-o', 'json']);
    const view = JSON.parse(json.out) as Record<string, unknown>;
    expect(view).toMatchObject({
      kind: 'Swarm',
      name: 'shown',
      phase: 'Running',
      health: { state: 'Reconciling', reason: 'Running' },
      version: { decided: 'v1', active: 'v1' },
      agents: { total: 4, completed: 1, failed: 1, done: 2 },
      fallbacks: 0,
      pods: [{ name: 'shown-v1-1', version: 'v1', attempt: 1, phase: 'Running', ready: true }],
    });
    const yaml = await kubectlSwarm(['get', 'shown', '-n', ns, '-o', 'yaml']);
    expect(parseAllDocuments(yaml.out).map((d) => d.toJS() as unknown)).toEqual([view]);
  });

  it('-w follows the swarm and ends with it: one JSON view per change, exit 0 on Succeeded', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'watched', { agents: 3, coordination: { version: 'v2' } }));
    const watching = start(['get', 'watched', '-n', ns, '-w', '-o', 'json', '--timeout', '60']);
    const pod = await waitFor('pod', () => podOf('watched'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    // The watcher printed the Running view before the swarm moves on.
    await waitFor('Running shown', () => watching.out.text.includes('"phase":"Running"') || undefined);
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'watched', total: 3, intervalMs: 10 });
    for (const i of [0, 1, 2]) pub.onResponse(response(i));
    await pub.flush({ status: 'completed' });
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const { code, out } = await watching.done;
    expect(code).toBe(0);
    const views = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { phase: string; agents: { done: number }; health: { state: string }; pods: Array<{ phase: string }> });
    // Phases in order, each change shown once.
    const phases = views.map((v) => v.phase).filter((p, i, all) => p !== all[i - 1]);
    expect(phases.slice(-2)).toEqual(['Running', 'Succeeded']);
    expect(new Set(out.trim().split('\n')).size).toBe(views.length);
    const last = views.at(-1)!;
    expect(last).toMatchObject({ phase: 'Succeeded', agents: { done: 3 }, health: { state: 'Ready' } });
    expect(last.pods[0]?.phase).toBe('Succeeded');
  });

  it('-w exits 1 when the swarm fails (human output)', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'doomed', { coordination: { version: 'v2', fallbackEnabled: false } }));
    const watching = kubectlSwarm(['get', 'doomed', '-n', ns, '-w', '--timeout', '60']);
    const pod = await waitFor('pod', () => podOf('doomed'));
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 3, 'bash >= 4 not found'));
    const { code, out } = await watching;
    expect(code).toBe(1);
    expect(out).toMatch(/Phase: +Failed\n/);
    expect(out).toMatch(/Health: +Stalled \(V2Unavailable\): V2 unavailable \(bash >= 4 not found\) and fallback is disabled\n/);
  });

  it('-w on a terminal redraws in place', async () => {
    const { code, out } = await kubectlSwarm(['get', 'doomed', '-n', ns, '-w'], true);
    expect(code).toBe(1);
    expect(out.startsWith('\x1b[H\x1b[2J')).toBe(true);
  });

  it('-w stops at --timeout with exit 3 when the swarm has not finished', async () => {
    const { code, err } = await kubectlSwarm(['get', 'shown', '-n', ns, '-w', '-o', 'json', '--timeout', '1']);
    expect(code).toBe(3);
    expect(err).toBe(`kubectl-swarm: swarm ${ns}/shown did not finish within 1s\n`);
  });

  it('a missing swarm: exit 4; bad usage: exit 2', async () => {
    expect(await kubectlSwarm(['get', 'missing', '-n', ns])).toMatchObject({ code: 4, err: `kubectl-swarm: swarm ${ns}/missing not found\n` });
    expect((await kubectlSwarm(['get', 'missing', '-n', ns, '-w'])).code).toBe(4);
    expect((await kubectlSwarm(['get', '-n', ns])).code).toBe(2);
    expect((await kubectlSwarm(['get', 'x', '-o', 'wide'])).code).toBe(2);
  });
});

type PolicyObject = {
  metadata: { generation: number; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
  status?: {
    phase?: string;
    effectivePercentage?: number;
    observedGeneration?: number;
    currentStep?: number;
    conditions?: Array<{ type: string; status: string; reason: string }>;
  };
};
const getPolicy = (name: string) => c.get<PolicyObject>(policyPath(ns, name));
const createPolicy = async (name: string, spec: Record<string, unknown>) => {
  await c.create(policyPath(ns), { apiVersion: 'swarm.cfn.dev/v1alpha1', kind: 'RolloutPolicy', metadata: { name, namespace: ns }, spec });
  return waitFor(`${name} evaluated`, async () => {
    const p = await getPolicy(name);
    return p.status?.observedGeneration === p.metadata.generation ? p : undefined;
  });
};

/** Runs a request and checks that the spec and its generation did not move. */
async function request(args: string[], name: string) {
  const before = await getPolicy(name);
  const r = await kubectlSwarm(['rollout', ...args, name, '-n', ns]);
  const after = await getPolicy(name);
  expect(after.metadata.generation).toBe(before.metadata.generation);
  expect(after.spec).toEqual(before.spec);
  return { ...r, policy: after };
}

describe('kubectl swarm rollout', () => {
  it('get: the effective share, step, gates observed and conditions', async () => {
    await createPolicy('shown', { v2Percentage: 10, steps: [{ percentage: 50 }, { percentage: 100 }], autoPromote: true });
    const { code, out } = await kubectlSwarm(['rollout', 'get', 'shown', '-n', ns]);
    expect(code).toBe(0);
    expect(out).toMatch(/Phase: +Canary\n/);
    expect(out).toMatch(/Health: +Reconciling \(EvaluatingStep\): spec\.v2Percentage at 10%, next 50%/);
    expect(out).toMatch(/V2 share: +10% of new swarms \(spec\.v2Percentage 10%\)\n/);
    expect(out).toMatch(/Step: +spec\.v2Percentage \(10%\), next 50% when the gates hold\n/);
    expect(out).toMatch(/Paused: +no\n/);
    expect(out).toMatch(/Normal +SpecApplied/);
    const json = JSON.parse((await kubectlSwarm(['rollout', 'get', 'shown', '-n', ns, '-o', 'json'])).out) as Record<string, unknown>;
    expect(json).toMatchObject({
      kind: 'RolloutPolicy',
      phase: 'Canary',
      v2Percentage: 10,
      effectivePercentage: 10,
      step: { index: -1, of: 2, percentage: 10, next: 50 },
      paused: { spec: false, request: false },
    });
  });

  it('pause and resume: Paused through an annotation, the spec untouched; -w shows the change', async () => {
    await createPolicy('pausable', { v2Percentage: 10, steps: [{ percentage: 50 }], autoPromote: true });
    const watching = start(['rollout', 'get', 'pausable', '-n', ns, '-w', '-o', 'json', '--timeout', '5']);
    const shown = (phase: string, times = 1) =>
      waitFor(`${phase} shown`, () => (watching.out.text.split(`"phase":"${phase}"`).length > times ? true : undefined));
    await shown('Canary');
    const paused = await request(['pause'], 'pausable');
    expect(paused).toMatchObject({ code: 0, out: `rolloutpolicy ${ns}/pausable: pause done: paused by request (kubectl swarm rollout pause)\n` });
    expect(paused.policy.status?.phase).toBe('Paused');
    expect(paused.policy.metadata.annotations?.[ROLLOUT_ANNOTATIONS.paused]).toBe('true');
    await shown('Paused');
    const resumed = await request(['resume'], 'pausable');
    expect(resumed).toMatchObject({ code: 0, out: `rolloutpolicy ${ns}/pausable: resume done: resumed by request (kubectl swarm rollout resume)\n` });
    expect(resumed.policy.status?.phase).toBe('Canary');
    await shown('Canary', 2);
    const watched = await watching.done;
    expect(watched.code).toBe(0);
    const phases = watched.out
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { phase: string }).phase);
    expect(phases.filter((p, i) => p !== phases[i - 1])).toEqual(['Canary', 'Paused', 'Canary']);
  });

  it('promote: the next step now, then refused at the last step (exit 1)', async () => {
    await createPolicy('promotable', { v2Percentage: 10, steps: [{ percentage: 50 }] });
    const first = await request(['promote'], 'promotable');
    expect(first).toMatchObject({ code: 0, out: `rolloutpolicy ${ns}/promotable: promote done: promoted to 50% (step 1 of 1)\n` });
    expect(first.policy.status).toMatchObject({ effectivePercentage: 50, currentStep: 0, phase: 'Balanced' });
    const again = await request(['promote', '-o', 'json'], 'promotable');
    expect(again.code).toBe(1);
    expect(JSON.parse(again.out)).toMatchObject({
      kind: 'RolloutRequest',
      action: 'promote',
      state: 'refused',
      message: 'no step above 50%: nothing to promote',
    });
  });

  it('abort: V2 at 0% for new swarms until retry; retry restarts from the spec; neither touches the spec', async () => {
    await createPolicy('abortable', { v2Percentage: 100 });
    const aborted = await request(['abort'], 'abortable');
    expect(aborted.code).toBe(0);
    expect(aborted.policy.status).toMatchObject({ effectivePercentage: 0, phase: 'RolledBack' });
    expect(aborted.policy.status?.conditions?.find((x) => x.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'Aborted' });
    // A new swarm naming the policy runs V1 though the spec says 100%.
    await c.create(swarmPath(ns), swarmManifest(ns, 'after-abort', { rolloutPolicyRef: { name: 'abortable' } }));
    expect(await waitFor('routed', async () => (await getSwarm(c, ns, 'after-abort')).status?.version)).toBe('v1');
    const retried = await request(['retry'], 'abortable');
    expect(retried).toMatchObject({ code: 0, out: `rolloutpolicy ${ns}/abortable: retry done: evaluation restarted at 100%\n` });
    expect(retried.policy.status).toMatchObject({ effectivePercentage: 100, phase: 'Full' });
    expect(retried.policy.status?.conditions?.find((x) => x.type === 'Stalled')).toBeUndefined();
    await c.create(swarmPath(ns), swarmManifest(ns, 'after-retry', { rolloutPolicyRef: { name: 'abortable' } }));
    expect(await waitFor('routed', async () => (await getSwarm(c, ns, 'after-retry')).status?.version)).toBe('v2');
  });

  it('abort holds until the next spec change (a Git commit), which starts afresh', async () => {
    await createPolicy('committed', { v2Percentage: 20 });
    expect((await request(['abort'], 'committed')).policy.status?.effectivePercentage).toBe(0);
    await c.mergePatch(policyPath(ns, 'committed'), { spec: { v2Percentage: 30 } });
    const p = await waitFor('spec applied', async () => {
      const x = await getPolicy('committed');
      return x.status?.observedGeneration === x.metadata.generation ? x : undefined;
    });
    expect(p.status).toMatchObject({ effectivePercentage: 30, phase: 'Canary' });
  });

  it('without an operator to answer: exit 3 after --timeout, the annotation left for it', async () => {
    await createPolicy('unanswered', { v2Percentage: 10, steps: [{ percentage: 50 }] });
    await op?.stop();
    op = undefined;
    const r = await kubectlSwarm(['rollout', 'promote', 'unanswered', '-n', ns, '--timeout', '1']);
    expect(r).toMatchObject({ code: 3, err: 'kubectl-swarm: the operator did not handle the promote request (is it running?) within 1s\n' });
    expect((await getPolicy('unanswered')).metadata.annotations?.[ROLLOUT_ANNOTATIONS.promote]).toMatch(/^\d{4}-\d\d-\d\dT/);
    // Handled once the operator is back.
    op = await runOperator({ namespaces: [ns] });
    expect(await waitFor('promoted', async () => ((await getPolicy('unanswered')).status?.effectivePercentage === 50 ? true : undefined))).toBe(true);
  });
});

describe('kubectl finds the plugin on PATH', () => {
  it('`kubectl swarm get` runs bin/kubectl-swarm.js (package.json bin)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubectl-plugin-'));
    try {
      symlinkSync(join(REPO, 'bin/kubectl-swarm.js'), join(dir, 'kubectl-swarm'));
      const env = { ...process.env, PATH: `${dir}:${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
      const { stdout } = await promisify(execFile)(kubectlBin(), ['swarm', 'get', 'shown', '-n', ns, '-o', 'json'], { env });
      expect(JSON.parse(stdout)).toMatchObject({ kind: 'Swarm', name: 'shown', namespace: ns });
      const plugins = await promisify(execFile)(kubectlBin(), ['plugin', 'list'], { env });
      expect(plugins.stdout).toContain(join(dir, 'kubectl-swarm'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
