// `cfn coordinate` for real: the test plays the kubelet by running the
// coordinator pod's command as a local process, with the pod's environment and
// a token of the pod's own ServiceAccount (so its least-privilege RBAC is what
// is exercised), on a real tmpfs.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  client,
  createNamespace,
  events,
  tokenKubeconfig,
  deleteNamespace,
  getSwarm,
  installCrds,
  listPods,
  podRunning,
  podTerminated,
  runOperator,
  runPodCommandHere,
  setPodStatus,
  swarmManifest,
  swarmPath,
  waitFor,
} from '../operator/harness.js';
import { DirectorySource } from '../../../operator/results/directory-sink.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';
import type { PodObject } from '../operator/harness.js';

const c = client();
let ns: string;
let op: RunningOperator;
const work = mkdtempSync(join(tmpdir(), 'cfn-coordinate-'));
const shm = `/dev/shm/cfn-it-${process.pid}`;

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'coordinate');
  op = await runOperator({ namespaces: [ns] });
});
afterAll(async () => {
  await op?.stop();
  await deleteNamespace(c, ns);
  rmSync(work, { recursive: true, force: true });
  rmSync(shm, { recursive: true, force: true });
});

/** A kubeconfig holding a token of `sa`, like the one mounted into the pod. */
const serviceAccountKubeconfig = (sa: string): Promise<string> => tokenKubeconfig(c, ns, sa, work);

/** Runs the pod's container command here (runPodCommandHere), with a token of its ServiceAccount. */
async function runPodCommand(pod: PodObject, extraEnv: Record<string, string> = {}) {
  return runPodCommandHere(pod, { work, shm, kubeconfig: await serviceAccountKubeconfig(pod.spec.serviceAccountName), env: extraEnv });
}

/** The records a swarm's coordinator stored on its results volume (CFN_RESULTS_DIR is `work`), by index. */
async function storedResults(name: string, root = work) {
  const sw = await getSwarm(c, ns, name);
  const { results, unreadable } = await new DirectorySource(root, { namespace: ns, name, uid: sw.metadata.uid }).read();
  expect(unreadable).toEqual([]);
  return results;
}

const podOf = async (name: string, attempt: number) =>
  (await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === name && p.metadata.labels['swarm.cfn.dev/attempt'] === String(attempt));

describe('cfn coordinate, run as the pod would run it', () => {
  it("runs a V2 swarm of 200 real agents on tmpfs and publishes its status with the pod's own least-privilege token", async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'real-v2', { agents: 200, coordination: { version: 'v2' }, agent: { command: ['cat'], concurrency: 16 } }));
    const pod = await waitFor('pod', () => podOf('real-v2', 1));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    // POD_NAME as the downward API gives it: the records name the pod that stored them.
    const run = await runPodCommand(pod, { POD_NAME: pod.metadata.name });
    expect(await run.done).toBe(0);
    const responses = await storedResults('real-v2');
    expect(responses.map((r) => r.index)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(responses[0]).toMatchObject({ status: 'completed', output: 'Fix every lint error in src/', version: 'v2', pod: pod.metadata.name });
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Succeeded', async () => {
      const s = await getSwarm(c, ns, 'real-v2');
      return s.status?.phase === 'Succeeded' ? s : undefined;
    });
    expect(sw.status).toMatchObject({ agents: { total: 200, completed: 200, failed: 0 }, deliveryRate: 100, completedAgents: '0-199', version: 'v2' });
    const uid = sw.metadata.uid;
    expect((sw.status as { results?: unknown }).results).toEqual({
      type: 'persistentVolumeClaim',
      location: `pvc://real-v2-results/${ns}/real-v2/${uid}/`,
      stored: 200,
      bytes: expect.any(Number),
      pending: 0,
    });
    expect(sw.status?.conditions?.find((x) => x.type === 'ResultsStored')).toMatchObject({ status: 'True', reason: 'Stored' });
    expect((sw.status as { coordinationTimeMs?: number }).coordinationTimeMs).toBeGreaterThan(0);
  });

  it('delivery is completed work: a V2 swarm with 10% of agents failing on a no-retry exit code ends Failed at 90% under the default successPolicy', async () => {
    const agent = ['sh', '-c', 'exit $(( AGENT_INDEX % 10 == 0 ? 7 : 0 ))'];
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, 'tenth', { agents: 50, coordination: { version: 'v2' }, agent: { command: agent, retries: 2, noRetryExitCodes: [7] } }),
    );
    const pod = await waitFor('pod', () => podOf('tenth', 1));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    expect(await (await runPodCommand(pod)).done).toBe(0);
    const responses = await storedResults('tenth');
    // The spec's noRetryExitCodes reached the engine: one attempt each, though 2 retries were allowed.
    expect(responses.filter((r) => r.status === 'failed').map((r) => [r.index, r.exitCode, r.attempts])).toEqual([0, 10, 20, 30, 40].map((i) => [i, 7, 1]));
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Failed', async () => {
      const s = await getSwarm(c, ns, 'tenth');
      return s.status?.phase === 'Failed' ? s : undefined;
    });
    expect(sw.status).toMatchObject({
      agents: { total: 50, completed: 45, failed: 5 },
      deliveryRate: 90,
      completedAgents: '1-9,11-19,21-29,31-39,41-49',
      failedIndexes: '0,10,20,30,40',
    });
    expect(sw.status?.conditions?.find((x) => x.type === 'Failed')).toMatchObject({
      reason: 'DeliveryBelowSuccessPolicy',
      message: '45/50 agents completed, 5 failed: delivery 90% < 100% (spec.successPolicy.minDeliveryRate)',
    });
  });

  it('a replacement reading a status from before failedIndexes (completedAgents held failed agents too) runs neither again and counts them true', async () => {
    const marker = join(work, 'old-status.log');
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, 'old-status', { agents: 6, coordination: { version: 'v1' }, agent: { command: ['sh', '-c', `echo "$AGENT_INDEX" >> ${marker}`] } }),
    );
    const pod = await waitFor('pod', () => podOf('old-status', 1));
    // What a coordinator of the earlier release published: every final agent in completedAgents.
    await c.mergePatch(swarmPath(ns, 'old-status', 'status'), {
      status: {
        agents: { total: 6, completed: 3, failed: 1 },
        deliveryRate: 66.67,
        completedAgents: '0-3',
        failedAgents: [{ index: 1, reason: 'exit code 1' }],
      },
    });
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    expect(await (await runPodCommand(pod)).done).toBe(0);
    expect(readFileSync(marker, 'utf8').trim().split('\n').map(Number).sort()).toEqual([4, 5]);
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Failed', async () => {
      const s = await getSwarm(c, ns, 'old-status');
      return s.status?.phase === 'Failed' ? s : undefined;
    });
    expect(sw.status).toMatchObject({ agents: { total: 6, completed: 5, failed: 1 }, deliveryRate: 83.3, completedAgents: '0,2-5', failedIndexes: '1' });
  });

  it("the pod's token can touch only its own Swarm", async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'neighbour', { coordination: { version: 'v1' } }));
    await waitFor('neighbour pod', () => podOf('neighbour', 1));
    const kubeconfig = await serviceAccountKubeconfig('real-v2-coordinator');
    const { KubeClient } = await import('../../../operator/k8s/client.js');
    const sa = KubeClient.load(kubeconfig);
    // Its one verb: patch its own Swarm's status (it reads the Swarm through an empty patch).
    await expect(sa.mergePatch(swarmPath(ns, 'real-v2', 'status'), {})).resolves.toBeDefined();
    await expect(sa.get(swarmPath(ns, 'real-v2'))).rejects.toThrow(/forbidden/);
    await expect(sa.get(swarmPath(ns, 'neighbour'))).rejects.toThrow(/forbidden/);
    await expect(sa.mergePatch(swarmPath(ns, 'neighbour', 'status'), {})).rejects.toThrow(/forbidden/);
    await expect(sa.mergePatch(swarmPath(ns, 'neighbour', 'status'), { status: { deliveryRate: 1 } })).rejects.toThrow(/forbidden/);
    await expect(sa.mergePatch(swarmPath(ns, 'real-v2'), { spec: { ttlSecondsAfterFinished: 1 } })).rejects.toThrow(/forbidden/);
    await expect(sa.get(`/api/v1/namespaces/${ns}/pods`)).rejects.toThrow(/forbidden/);
  });

  it('a real V2 preflight failure exits 3 with the reason; the operator falls back and V1 completes the swarm', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'no-tmpfs', { agents: 20, coordination: { version: 'v2' } }));
    const pod = await waitFor('pod', () => podOf('no-tmpfs', 1));
    const missing = join(work, 'not-there', 'shm');
    const run = await runPodCommand(pod, { CFN_SHM_PATH: missing });
    expect(await run.done).toBe(3);
    const reason = readFileSync(join(work, `${pod.metadata.name}.termination`), 'utf8');
    expect(reason).toContain(missing);
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 3, reason));
    const v1 = await waitFor('v1 pod', () => podOf('no-tmpfs', 2), 5000);
    expect(await waitFor('fallback in status', async () => (await getSwarm(c, ns, 'no-tmpfs')).status?.fallback?.reason)).toBe(reason);
    await setPodStatus(c, ns, v1.metadata.name, podRunning(true));
    expect(await (await runPodCommand(v1)).done).toBe(0);
    await setPodStatus(c, ns, v1.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Succeeded', async () => {
      const s = await getSwarm(c, ns, 'no-tmpfs');
      return s.status?.phase === 'Succeeded' ? s : undefined;
    });
    expect(sw.status).toMatchObject({ version: 'v2', activeVersion: 'v1', deliveryRate: 100, agents: { total: 20, completed: 20 } });
  });

  it('a coordinator killed mid-run is replaced, and the replacement re-runs no agent whose final answer is in (completed or failed)', async () => {
    const marker = join(work, 'ran.log');
    // Every third agent fails for good (exit 4, never retried): its index must not run again either.
    const agent = ['sh', '-c', `echo "$AGENT_INDEX" >> ${marker}; sleep 0.2; exit $(( AGENT_INDEX % 3 == 0 ? 4 : 0 ))`];
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, 'killed', {
        agents: 24,
        coordination: { version: 'v1' },
        successPolicy: { minDeliveryRate: 66 },
        agent: { command: agent, concurrency: 2, noRetryExitCodes: [4] },
      }),
    );
    const pod = await waitFor('pod', () => podOf('killed', 1));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    const first = await runPodCommand(pod);
    // Let some agents deliver and the progress reach status, then kill -9.
    await waitFor('progress published', async () => ((await getSwarm(c, ns, 'killed')).status?.agents?.completed ?? 0) >= 6, 30_000, 100);
    first.child.kill('SIGKILL');
    await first.done;
    await new Promise<void>((resolve) => execFile('pkill', ['-KILL', '-f', marker], () => resolve()));
    const published = (await getSwarm(c, ns, 'killed')).status;
    const delivered = published?.completedAgents ?? '';
    const failedBefore = published?.failedIndexes ?? '';
    expect(failedBefore).not.toBe('');
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 137, undefined, 'OOMKilled'));
    const replacement = await waitFor('replacement', () => podOf('killed', 2));
    expect(replacement.spec.containers[0]!.env).toContainEqual({ name: 'CFN_COMPLETED_AGENTS', value: delivered });
    expect(replacement.spec.containers[0]!.env).toContainEqual({ name: 'CFN_FAILED_INDEXES', value: failedBefore });
    await setPodStatus(c, ns, replacement.metadata.name, podRunning(true));
    expect(await (await runPodCommand(replacement)).done).toBe(0);
    const { expandRanges } = await import('../../../operator/util/ranges.js');
    const before = new Set([...expandRanges(delivered), ...expandRanges(failedBefore)]);
    const runs = readFileSync(marker, 'utf8').trim().split('\n').map(Number);
    // Every agent ran; none whose final answer was in before the kill ran again.
    expect(new Set(runs).size).toBe(24);
    for (const i of before) expect(runs.filter((r) => r === i)).toHaveLength(1);
    await setPodStatus(c, ns, replacement.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Succeeded', async () => {
      const s = await getSwarm(c, ns, 'killed');
      return s.status?.phase === 'Succeeded' ? s : undefined;
    });
    expect(sw.status).toMatchObject({ deliveryRate: 66.6, failedIndexes: '0,3,6,9,12,15,18,21', agents: { total: 24, completed: 16, failed: 8 } });
    expect(sw.status?.conditions?.find((x) => x.type === 'Complete')?.message).toBe('16/24 agents completed, 8 failed: delivery 66.6% >= 66%');
  });
  it('a V2 coordinator stopped mid-run (SIGTERM) publishes what it delivered and which agents it cut short; the V1 fallback runs every other agent exactly once', async () => {
    const marker = join(work, 'handover.log');
    // Appends its index, then works a while.
    const agent = ['sh', '-c', `echo "$AGENT_INDEX" >> ${marker}; sleep 0.5`];
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, 'stopped-v2', { agents: 24, coordination: { version: 'v2' }, agent: { command: agent, concurrency: 3, retries: 0 } }),
    );
    const pod = await waitFor('pod', () => podOf('stopped-v2', 1));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    const v2 = await runPodCommand(pod);
    await waitFor('progress published', async () => ((await getSwarm(c, ns, 'stopped-v2')).status?.agents?.completed ?? 0) >= 6, 30_000, 100);
    v2.child.kill('SIGTERM');
    expect(await v2.done).toBe(143);
    expect(readFileSync(join(work, `${pod.metadata.name}.termination`), 'utf8')).toMatch(/^stopped mid-run: \d+\/24 agents delivered, [1-9]\d* interrupted$/);
    const stopped = await getSwarm(c, ns, 'stopped-v2');
    const { expandRanges } = await import('../../../operator/util/ranges.js');
    const delivered = new Set(expandRanges(stopped.status?.completedAgents ?? ''));
    const interrupted = expandRanges(stopped.status?.interruptedAgents ?? '');
    const ranBefore = readFileSync(marker, 'utf8').trim().split('\n').map(Number);
    // Exactly the agents that started and did not deliver are reported as cut short.
    expect(interrupted).toEqual([...new Set(ranBefore)].filter((i) => !delivered.has(i)).sort((a, b) => a - b));
    expect(interrupted.length).toBeGreaterThan(0);
    expect(stopped.status?.rerunAgents).toBe(interrupted.length);
    // The kubelet reports the container's exit: V2's own failure, a fallback.
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 143));
    const v1 = await waitFor('v1 pod', () => podOf('stopped-v2', 2));
    expect(v1.metadata.labels['swarm.cfn.dev/version']).toBe('v1');
    await setPodStatus(c, ns, v1.metadata.name, podRunning(true));
    expect(await (await runPodCommand(v1)).done).toBe(0);
    const runs = readFileSync(marker, 'utf8').trim().split('\n').map(Number);
    const counts = new Map<number, number>();
    for (const i of runs) counts.set(i, (counts.get(i) ?? 0) + 1);
    for (let i = 0; i < 24; i++) expect([i, counts.get(i)]).toEqual([i, interrupted.includes(i) ? 2 : 1]);
    await setPodStatus(c, ns, v1.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Succeeded', async () => {
      const s = await getSwarm(c, ns, 'stopped-v2');
      return s.status?.phase === 'Succeeded' ? s : undefined;
    });
    expect(sw.status).toMatchObject({
      activeVersion: 'v1',
      completedAgents: '0-23',
      rerunAgents: interrupted.length,
      fallback: { from: 'v2', to: 'v1', reason: 'V2 coordinator failed: Error: exit code 143' },
    });
  });
});

describe('cfn coordinate with per-agent tasks', () => {
  /** Plays the kubelet for the pod's tasks volume: the ConfigMap key it names, written as the file the mount holds. */
  async function mountTasks(pod: PodObject): Promise<Record<string, string>> {
    const vol = (
      pod.spec as unknown as { volumes: Array<{ name: string; configMap?: { name: string; items: Array<{ key: string; path: string }> } }> }
    ).volumes.find((v) => v.name === 'tasks');
    const dir = mkdtempSync(join(work, 'tasks-'));
    if (vol?.configMap) {
      const cm = await c.get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${ns}/configmaps/${vol.configMap.name}`).catch(() => undefined);
      for (const item of vol.configMap.items) {
        const text = cm?.data?.[item.key];
        if (text !== undefined) writeFileSync(join(dir, item.path), text);
      }
    }
    return { CFN_TASKS_DIR: dir };
  }
  const agent = ['sh', '-c', 'printf "%s|%s|%s|" "$AGENT_INDEX" "${FILE-none}" "$CFN_OBJECTIVE"; cat'];
  const outputs = async (name: string) => (await storedResults(name)).map((r) => r.output);

  it.each(['v2', 'v1'] as const)('%s: tasks from a ConfigMap key (JSON lines with env) reach agent i alone; no task in the pod env', async (version) => {
    const name = `cm-${version}`;
    const lines = [{ task: 'fix a.sh\n$(touch pwned) `x`', env: [{ name: 'FILE', value: 'a.sh' }] }, { task: 'fix b.sh' }, { task: 'fix "c".sh; rm -rf /' }];
    await c.create(`/api/v1/namespaces/${ns}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name },
      data: { 'tasks.jsonl': lines.map((l) => JSON.stringify(l)).join('\n') + '\n' },
    });
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, name, {
        agents: 3,
        objective: 'OBJ',
        tasksFrom: { configMapKeyRef: { name, key: 'tasks.jsonl' } },
        coordination: { version },
        agent: { command: agent },
      }),
    );
    const pod = await waitFor('pod', () => podOf(name, 1));
    expect(JSON.stringify(pod.spec.containers[0]!.env)).not.toContain('fix b.sh');
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    expect(await (await runPodCommand(pod, await mountTasks(pod))).done).toBe(0);
    expect(await outputs(name)).toEqual(['0|a.sh|OBJ|fix a.sh\n$(touch pwned) `x`', '1|none|OBJ|fix b.sh', '2|none|OBJ|fix "c".sh; rm -rf /']);
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Succeeded', async () => {
      const s = await getSwarm(c, ns, name);
      return s.status?.phase === 'Succeeded' ? s : undefined;
    });
    expect(sw.status).toMatchObject({ agents: { total: 3, completed: 3, failed: 0 }, deliveryRate: 100 });
  });

  it.each(['v2', 'v1'] as const)('%s resume: a replacement skips the agents already final and agent i still gets task i', async (version) => {
    const name = `resume-${version}`;
    const marker = join(work, `${name}.ran`);
    const m = swarmManifest(ns, name, {
      tasks: ['a', 'b', 'c', 'd'],
      coordination: { version },
      agent: { command: ['sh', '-c', `printf "%s:%s\\n" "$AGENT_INDEX" "$(cat)" >> ${marker}`] },
    });
    delete (m.spec as Record<string, unknown>).agents;
    await c.create(swarmPath(ns), m);
    const pod = await waitFor('pod', () => podOf(name, 1));
    // What an earlier coordinator published: agent 0 completed, agent 2 failed finally.
    await c.mergePatch(swarmPath(ns, name, 'status'), { status: { agents: { total: 4, completed: 1, failed: 1 }, completedAgents: '0', failedIndexes: '2' } });
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    expect(await (await runPodCommand(pod)).done).toBe(0);
    expect(readFileSync(marker, 'utf8').trim().split('\n').sort()).toEqual(['1:b', '3:d']);
  });

  it('inline tasks with agents left out: agents = the number of tasks', async () => {
    const m = swarmManifest(ns, 'inline', { objective: 'OBJ', tasks: ['one', 'two'], coordination: { version: 'v2' }, agent: { command: agent } });
    delete (m.spec as Record<string, unknown>).agents;
    await c.create(swarmPath(ns), m);
    const pod = await waitFor('pod', () => podOf('inline', 1));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    expect(await (await runPodCommand(pod)).done).toBe(0);
    expect(await outputs('inline')).toEqual(['0|none|OBJ|one', '1|none|OBJ|two']);
  });

  it.each([
    ['more tasks than agents', 'a\nb\nc\n', 'invalid tasks: ConfigMap short key list holds 3 tasks but agents is 2: give one task per agent'],
    ['a missing key', undefined, 'invalid tasks: ConfigMap short key list not found (the ConfigMap or its key is missing)'],
  ])('%s: the swarm fails with the problem and sizes in its Failed condition, no agent runs, no fallback', async (_what, text, message) => {
    await c.delete(`/api/v1/namespaces/${ns}/configmaps/short`).catch(() => undefined);
    await c.create(`/api/v1/namespaces/${ns}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'short' },
      data: text === undefined ? { other: 'x' } : { list: text },
    });
    const name = `short-${text === undefined ? 'missing' : 'count'}`;
    const marker = join(work, `${name}.ran`);
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, name, {
        agents: 2,
        tasksFrom: { configMapKeyRef: { name: 'short', key: 'list' } },
        coordination: { version: 'v2' },
        agent: { command: ['sh', '-c', `touch ${marker}`] },
      }),
    );
    const pod = await waitFor('pod', () => podOf(name, 1));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    expect(await (await runPodCommand(pod, await mountTasks(pod))).done).toBe(0);
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Failed', async () => {
      const s = await getSwarm(c, ns, name);
      return s.status?.phase === 'Failed' ? s : undefined;
    });
    expect(sw.status?.conditions?.find((x) => x.type === 'Failed')).toMatchObject({ reason: 'InvalidTasks', message });
    // The event is recorded after the status: wait for it, not for the phase.
    const event = await waitFor('InvalidTasks event', async () =>
      (await events(c, ns)).find((e) => e.involvedObject.name === name && e.reason === 'InvalidTasks'),
    );
    expect(event).toMatchObject({ type: 'Warning', message });
    expect(sw.status?.fallback).toBeUndefined();
    expect(existsSync(marker)).toBe(false);
  });
});

describe('cfn coordinate on a full results volume (a tiny real tmpfs; mounting needs root)', () => {
  const mounts: string[] = [];
  afterAll(() => {
    for (const m of mounts) execFileSync('umount', [m]);
  });
  /** A tmpfs of `size` under work, filled up when `full`; returns its path. */
  const volume = (name: string, size: string): string => {
    const dir = join(work, name);
    mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0777`, 'tmpfs', dir]);
    mounts.push(dir);
    return dir;
  };
  const fill = (dir: string): void => {
    try {
      writeFileSync(join(dir, 'filler'), Buffer.alloc(8 * 1024 * 1024));
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
  };
  const resultsOf = async (name: string) =>
    (await getSwarm(c, ns, name)).status as
      { results?: { stored: number; pending?: number; lastError?: string; bytes: number }; agents?: { completed: number; failed: number } } | undefined;

  it('storing fails (ENOSPC): lastError and ResultsStored False while it does; room again: every record lands, the swarm succeeds', async () => {
    const dir = volume('full-then-free', '256k');
    fill(dir);
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, 'full-free', { agents: 6, coordination: { version: 'v2' }, agent: { command: ['sh', '-c', 'echo "out $AGENT_INDEX"'] } }),
    );
    const pod = await waitFor('pod', () => podOf('full-free', 1));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    const run = await runPodCommand(pod, { CFN_RESULTS_DIR: dir, POD_NAME: pod.metadata.name });
    // Every agent answered (6 pending) and the operator judged the sink: both are waited for.
    const failing = await waitFor('6 results pending and ResultsStored False', async () => {
      const s = await getSwarm(c, ns, 'full-free');
      const pending = (s.status as { results?: { pending?: number } } | undefined)?.results?.pending;
      return pending === 6 && s.status?.conditions?.find((x) => x.type === 'ResultsStored' && x.status === 'False') ? s : undefined;
    });
    const during = failing.status as { results?: { stored: number; pending?: number; lastError?: string }; agents?: { completed: number } };
    expect(during.results).toMatchObject({ stored: 0, pending: 6, lastError: expect.stringContaining('ENOSPC') });
    // Not stored, not counted as done.
    expect(during.agents?.completed ?? 0).toBe(0);
    expect(failing.status?.conditions?.find((x) => x.type === 'ResultsStored')).toMatchObject({
      reason: 'StoreFailing',
      message: expect.stringContaining('ENOSPC'),
    });
    rmSync(join(dir, 'filler'));
    expect(await run.done).toBe(0);
    expect((await storedResults('full-free', dir)).map((r) => r.output)).toEqual(Array.from({ length: 6 }, (_, i) => `out ${i}\n`));
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Succeeded', async () => {
      const s = await getSwarm(c, ns, 'full-free');
      return s.status?.phase === 'Succeeded' ? s : undefined;
    });
    expect((await resultsOf('full-free'))?.results).toMatchObject({ stored: 6, pending: 0 });
    expect((await resultsOf('full-free'))?.results?.lastError).toBeUndefined();
    expect(sw.status?.conditions?.find((x) => x.type === 'ResultsStored')).toMatchObject({ status: 'True', reason: 'Stored' });
  });

  it('a volume that stays full: the run ends Failed (ResultsNotStored) naming how many were not stored; the records stored stay, and only they count', async () => {
    // 64 kB: room for a few 12 kB records, not for 8.
    const dir = volume('stays-full', '64k');
    const agent = ['sh', '-c', 'head -c 12000 /dev/zero | tr "\\0" "$AGENT_INDEX"'];
    await c.create(swarmPath(ns), swarmManifest(ns, 'stays-full', { agents: 8, coordination: { version: 'v1' }, agent: { command: agent, concurrency: 8 } }));
    const pod = await waitFor('pod', () => podOf('stays-full', 1));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    const run = await runPodCommand(pod, { CFN_RESULTS_DIR: dir, POD_NAME: pod.metadata.name, CFN_RESULTS_DRAIN_SECONDS: '3' });
    expect(await run.done).toBe(0);
    const stored = await storedResults('stays-full', dir);
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.length).toBeLessThan(8);
    for (const r of stored) expect(r.output).toBe(String(r.index).repeat(12000));
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Failed', async () => {
      const s = await getSwarm(c, ns, 'stays-full');
      return s.status?.phase === 'Failed' ? s : undefined;
    });
    const notStored = 8 - stored.length;
    expect(sw.status?.conditions?.find((x) => x.type === 'Failed')).toMatchObject({
      reason: 'ResultsNotStored',
      message: expect.stringMatching(new RegExp(`^${notStored} results? could not be stored: ENOSPC`)),
    });
    expect(sw.status?.conditions?.find((x) => x.type === 'ResultsStored')).toMatchObject({ status: 'False', reason: 'StoreFailing' });
    const st = await resultsOf('stays-full');
    expect(st?.results).toMatchObject({ stored: stored.length, pending: notStored });
    expect(st?.agents).toMatchObject({ completed: stored.length, failed: 0 });
  });
});
