// Agents are untrusted code, on a real node: they run in their own image (a
// second image built here without a registry: one static binary and a marker
// file, no shell) in the coordinator pod's agent container, as their own user,
// without any API credential. What they try against the coordinator and the
// cluster fails, and the Swarm's status stays exactly what happened; a
// launcher killed mid-run is reported honestly. With spec.agent.isolation
// container, agents running side by side in their own slot containers find
// nothing of each other, and nothing of the agent before them in their slot.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { z } from 'zod';
import { MODE, REPO, apply, freshNamespace, getSwarm, kubectl, kubectlJson, tempDir } from './kube.js';
import { dropResultsNamespace, hostPathPod, resultsVolume } from './results-volume.js';

jest.setTimeout(900_000);

const AGENT_IMAGE = 'docker.io/library/swarm-e2e-agent:1';
const MARKER = `only-in-the-probe-image-${process.pid}`;
const NODE_SOCKET = path.join(process.env.SWARM_CLUSTER_STATE_DIR ?? path.join(REPO, '.local'), 'cluster-e2e/node/containerd.sock');

const swarm = (name: string, command: string[], agents: number, claim: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: {
    objective: 'probe',
    agents,
    topology: 'flat',
    coordination: { version: 'v2', fallbackEnabled: true, fallbackTimeoutSeconds: 60 },
    agent: { image: AGENT_IMAGE, imagePullPolicy: 'Never', command, timeoutSeconds: 120, retries: 0, concurrency: agents },
    v2: { shmSizeLimit: '64Mi' },
    results: { type: 'persistentVolumeClaim', claimName: claim },
    ...extra,
  },
});

interface Response {
  index: number;
  status: string;
  exitCode: number | null;
  output: string;
  error: string | null;
}

async function responses(ns: string, claim: string, dir: string): Promise<Response[]> {
  // The swarm's stored records: one file per agent index under <namespace>/<name>/<uid>/ (docs/results.md).
  const text = await hostPathPod(ns, `read-${claim}`, dir, 'for f in /d/*/*/*/[0-9]*.json; do cat "$f"; echo; done');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Response)
    .sort((a, b) => a.index - b.index);
}

async function finished(ns: string, name: string) {
  await kubectl(['wait', '-n', ns, '--for=jsonpath={.status.phase}=Succeeded', `swarm/${name}`, '--timeout=1s'], { allowFail: true });
  for (let i = 0; i < 300; i++) {
    const s = await getSwarm(ns, name);
    if (s.status?.phase === 'Succeeded' || s.status?.phase === 'Failed') return s;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`swarm ${name} did not finish`);
}

(MODE === 'local' ? describe : describe.skip)('untrusted agents in their own image, on a real node', () => {
  let ns = '';
  beforeAll(async () => {
    const dir = tempDir('agent-image-');
    const archive = path.join(dir, 'agent.oci.tar');
    execFileSync('bash', [path.join(REPO, 'test/e2e/agent-image/build.sh'), archive, AGENT_IMAGE, MARKER], { stdio: 'inherit' });
    execFileSync('ctr', ['--address', NODE_SOCKET, '-n', 'k8s.io', 'images', 'import', archive], { stdio: 'inherit' });
    ns = await freshNamespace('untrusted');
  });
  afterAll(async () => {
    if (ns) await dropResultsNamespace(ns);
  });

  it('agents print what only their image has; a program not in the image fails the agent with 127 and the reason, not the pod', async () => {
    const markerDir = await resultsVolume(ns, 'r-marker');
    const shellDir = await resultsVolume(ns, 'r-shell');
    await apply(ns, swarm('marker', ['/probe', 'marker'], 3, 'r-marker'));
    await apply(ns, swarm('no-shell', ['sh', '-c', 'echo hi'], 2, 'r-shell'));
    const marker = await finished(ns, 'marker');
    expect(marker.status).toMatchObject({ phase: 'Succeeded', activeVersion: 'v2', deliveryRate: 100, agents: { total: 3, completed: 3, failed: 0 } });
    expect(marker.status?.fallback).toBeUndefined();
    expect((await responses(ns, 'r-marker', markerDir)).map((r) => r.output)).toEqual([`${MARKER}\n`, `${MARKER}\n`, `${MARKER}\n`]);
    // The pod: the agent container runs the agent image, the coordinator the operator image, no token but the coordinator's.
    const pod = await kubectlJson(
      z.object({ spec: z.object({ automountServiceAccountToken: z.boolean(), initContainers: z.array(z.object({ name: z.string(), image: z.string() })) }) }),
      ['get', 'pod', '-n', ns, marker.status!.coordinatorPod!],
    );
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    expect(pod.spec.initContainers.map((c) => [c.name, c.image])).toContainEqual(['agent', AGENT_IMAGE]);
    const noShell = await finished(ns, 'no-shell');
    expect(noShell.status).toMatchObject({ phase: 'Failed', activeVersion: 'v2', deliveryRate: 0, agents: { total: 2, completed: 0, failed: 2 } });
    expect(noShell.status?.fallback).toBeUndefined();
    for (const r of await responses(ns, 'r-shell', shellDir))
      expect(r).toMatchObject({ status: 'failed', exitCode: 127, error: 'launcher: sh: command not found' });
  });

  it('hostile agents: no credential, nothing of the coordinator to read, write or signal; the status is exactly what they did', async () => {
    const dir = await resultsVolume(ns, 'r-hostile');
    await apply(ns, swarm('hostile', ['/probe', 'hostile'], 4, 'r-hostile'));
    const s = await finished(ns, 'hostile');
    expect(s.status).toMatchObject({
      phase: 'Succeeded',
      activeVersion: 'v2',
      deliveryRate: 100,
      completedAgents: '0-3',
      agents: { total: 4, completed: 4, failed: 0 },
    });
    expect(s.status?.fallback).toBeUndefined();
    const all = await responses(ns, 'r-hostile', dir);
    expect(all).toHaveLength(4);
    for (const r of all) {
      expect(r.status).toBe('completed');
      const lines = r.output.trim().split('\n');
      expect(lines[0]).toBe("uid: not the coordinator's");
      expect(lines.filter((l) => l.includes('ALLOWED'))).toEqual([]);
      // 8 paths, the channel, the launcher's descriptors, environment and memory (PID 1 and the agent's parent), the coordinator's processes.
      expect(lines.filter((l) => l.includes(': denied'))).toHaveLength(16);
    }
  });

  it("an agent finds no other agent's task: the ones queued behind it (concurrency 1) or answered are nowhere it can read", async () => {
    const dir = await resultsVolume(ns, 'r-tasks');
    const manifest = swarm('tasks', ['/probe', 'tasks'], 3, 'r-tasks', { tasks: ['secret-task-0', 'secret-task-1', 'secret-task-2'] });
    manifest.spec.agent.concurrency = 1;
    await apply(ns, manifest);
    const s = await finished(ns, 'tasks');
    expect(s.status).toMatchObject({ phase: 'Succeeded', deliveryRate: 100, agents: { total: 3, completed: 3, failed: 0 } });
    const all = await responses(ns, 'r-tasks', dir);
    expect(all.map((r) => r.output)).toEqual([0, 1, 2].map((i) => `my task: secret-task-${i}\nanother agent's task: none\n`));
  });

  it('an agent that kills the launcher mid-run fails only the agents it was running, reported as such; no fallback', async () => {
    const dir = await resultsVolume(ns, 'r-kill');
    await apply(ns, swarm('kill-launcher', ['/probe', 'kill-launcher'], 3, 'r-kill'));
    const s = await finished(ns, 'kill-launcher');
    expect(s.status).toMatchObject({
      phase: 'Failed',
      activeVersion: 'v2',
      deliveryRate: 0,
      failedIndexes: '0-2',
      agents: { total: 3, completed: 0, failed: 3 },
    });
    expect(s.status?.fallback).toBeUndefined();
    for (const r of await responses(ns, 'r-kill', dir)) {
      expect(r).toMatchObject({ status: 'failed', exitCode: null });
      expect(r.error).toMatch(/^the launcher ended before agent-\d+'s final answer \(killed or crashed\): its exit code is unknown$/);
    }
  });

  // What agents of isolated slots say they found (probe siblings).
  const checkIsolated = async (ns: string, name: string, claim: string, dir: string, agents: number, version: string) => {
    const s = await finished(ns, name);
    expect(s.status).toMatchObject({ phase: 'Succeeded', activeVersion: version, deliveryRate: 100, agents: { total: agents, completed: agents, failed: 0 } });
    expect(s.status?.fallback).toBeUndefined();
    const all = await responses(ns, claim, dir);
    expect(all.map((r) => r.index)).toEqual([...Array(agents).keys()]);
    const uids = new Set<string>();
    for (const r of all) {
      const lines = r.output.split('\n');
      expect(lines[0]).toBe(`my task: secret-task-${r.index}`);
      expect(lines[1]).toMatch(/^uid: 6553[34]$/);
      uids.add(lines[1]!);
      expect(lines.slice(2)).toEqual([
        'fresh /tmp: yes',
        'fresh /workspace: yes',
        'processes besides the launcher and me: 0',
        "other slots' channels: none",
        "another agent's task: none",
        '',
      ]);
    }
    // Both slots ran agents, each as its own user.
    expect([...uids].sort()).toEqual(['uid: 65533', 'uid: 65534']);
    const pod = await kubectlJson(
      z.object({
        spec: z.object({
          shareProcessNamespace: z.boolean().optional(),
          initContainers: z.array(z.object({ name: z.string(), securityContext: z.object({ runAsUser: z.number() }).partial().optional() })),
        }),
      }),
      ['get', 'pod', '-n', ns, s.status!.coordinatorPod!],
    );
    expect(pod.spec.shareProcessNamespace).toBeUndefined();
    expect(pod.spec.initContainers.filter((c) => c.name.startsWith('agent')).map((c) => [c.name, c.securityContext?.runAsUser])).toEqual([
      ['agent-0', 65533],
      ['agent-1', 65534],
    ]);
  };

  it("isolation container: agents beside each other find none of their siblings' tasks, files or processes; an agent's files and background process are gone before the next", async () => {
    const dir = await resultsVolume(ns, 'r-iso');
    const agents = 6;
    const manifest = swarm('isolated', ['/probe', 'siblings'], agents, 'r-iso', { tasks: [...Array(agents).keys()].map((i) => `secret-task-${i}`) });
    Object.assign(manifest.spec.agent, { concurrency: 2, isolation: 'container' });
    await apply(ns, manifest);
    await checkIsolated(ns, 'isolated', 'r-iso', dir, agents, 'v2');
  });

  it('isolation container on V1: the same pod shape, every agent delivered, nothing of a sibling seen', async () => {
    const dir = await resultsVolume(ns, 'r-iso-v1');
    const agents = 4;
    const manifest = swarm('isolated-v1', ['/probe', 'siblings'], agents, 'r-iso-v1', {
      tasks: [...Array(agents).keys()].map((i) => `secret-task-${i}`),
      coordination: { version: 'v1' },
    });
    Object.assign(manifest.spec.agent, { concurrency: 2, isolation: 'container' });
    await apply(ns, manifest);
    await checkIsolated(ns, 'isolated-v1', 'r-iso-v1', dir, agents, 'v1');
  });

  it('measures: pod start and wall time of 8 agents `sleep 1` at concurrency 4, isolation shared vs container', async () => {
    const timing = z.object({
      metadata: z.object({ creationTimestamp: z.string() }),
      status: z.object({
        containerStatuses: z.array(z.object({ name: z.string(), state: z.object({ terminated: z.object({ startedAt: z.string() }).optional() }) })),
      }),
    });
    const times = z.object({ status: z.object({ startTime: z.string(), completionTime: z.string() }) });
    const measured: { isolation: string; podStartS: number; wallS: number; coordinationMs: number | undefined }[] = [];
    // ABBA: neither mode pays alone for what a first run in the namespace costs.
    for (const [i, isolation] of ['shared', 'container', 'container', 'shared'].entries()) {
      const name = `sleep-${isolation}-${i}`;
      await resultsVolume(ns, `r-${name}`);
      const manifest = swarm(name, ['sleep', '1'], 8, `r-${name}`);
      // The operator image (it has sleep).
      const agent: Record<string, unknown> = { ...manifest.spec.agent, concurrency: 4, isolation };
      delete agent.image;
      delete agent.imagePullPolicy;
      (manifest.spec as Record<string, unknown>).agent = agent;
      await apply(ns, manifest);
      const s = await finished(ns, name);
      expect(s.status).toMatchObject({ phase: 'Succeeded', deliveryRate: 100 });
      const pod = await kubectlJson(timing, ['get', 'pod', '-n', ns, s.status!.coordinatorPod!]);
      const started = pod.status.containerStatuses.find((c) => c.name === 'coordinator')?.state.terminated?.startedAt;
      const t = await kubectlJson(times, ['get', 'swarm', '-n', ns, name]);
      measured.push({
        isolation,
        podStartS: (Date.parse(started ?? '') - Date.parse(pod.metadata.creationTimestamp)) / 1000,
        wallS: (Date.parse(t.status.completionTime) - Date.parse(t.status.startTime)) / 1000,
        coordinationMs: s.status?.coordinationTimeMs,
      });
    }
    console.log(`isolation timing (8 agents sleep 1, concurrency 4): ${JSON.stringify(measured)}`);
    // Two rounds of 4 agents of 1 s each, whatever the mode.
    for (const m of measured) expect(m.coordinationMs).toBeGreaterThanOrEqual(2000);
  });
});
