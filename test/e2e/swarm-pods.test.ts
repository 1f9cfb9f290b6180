// A swarm's coordinator in a real pod on a real node: the V2 sample on a
// tmpfs /dev/shm, a real V2 preflight failure falling back to V1, and deletion
// removing the pod, its tmpfs and its processes.
import { describe, expect, it, jest } from '@jest/globals';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { MODE, SAMPLES, dropNamespace, events, freshNamespace, getSwarm, apply, kubectl, swarmPods, waitFor } from './kube.js';

/** The lint-fixers sample's agents: one per task (a shell file of the engine). */
const LINT_FIXERS_FILES = (readFileSync(path.join(SAMPLES, 'swarm-lint-fixers.yaml'), 'utf8').match(/^ {4}- bash\//gm) ?? []).length;

const swarm = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: { objective: 'e2e', agent: { command: ['cat'], timeoutSeconds: 60, retries: 1, concurrency: 8 }, ...spec },
});

/** Mount points (field 2 of /proc/mounts) on this machine containing `needle`. */
const hostMounts = (needle: string) =>
  readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[1]?.includes(needle));

/** Pids on this machine whose cgroup path names the pod (cgroup v1/v2 alike). */
function podProcesses(uid: string): number[] {
  const tag = `pod${uid}`;
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes(tag)) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

// Real pods on a loaded machine: minutes, not seconds.
jest.setTimeout(900_000);

describe('coordinator pods on a real node', () => {
  it('runs config/samples: the V2 sample (500 agents) in a real pod on a tmpfs /dev/shm of the requested size, to 100% delivery; the V1 and auto samples complete too', async () => {
    const ns = await freshNamespace('v2-sample');
    try {
      await kubectl(['apply', '-n', ns, '-k', SAMPLES]);
      const pod = await waitFor(
        'a running V2 coordinator pod',
        async () => (await swarmPods(ns, 'echo-500')).find((p) => p.status?.phase === 'Running'),
        180_000,
        200,
      );
      expect(pod.metadata.labels?.['swarm.cfn.dev/version']).toBe('v2');
      // The chart's default identity: the namespace's shared ServiceAccount; its
      // kubelet-mounted token publishes status only through the admission policy.
      expect(pod.spec.serviceAccountName).toBe('coordinator.swarm.cfn.dev');
      // Inside the container: /dev/shm is a tmpfs of the sample's 128Mi.
      const mounts = await kubectl(['exec', '-n', ns, pod.metadata.name, '--', 'cat', '/proc/mounts']);
      const shm = mounts.stdout.split('\n').find((l) => l.split(' ')[1] === '/dev/shm');
      expect(shm).toMatch(/^\S+ \/dev\/shm tmpfs \S*size=131072k/);
      const df = await kubectl(['exec', '-n', ns, pod.metadata.name, '--', 'df', '-Pk', '/dev/shm']);
      expect(df.stdout.split('\n')[1]).toMatch(/^tmpfs\s+131072\s/);
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/echo-500', '--timeout=300s'], { timeoutMs: 310_000 });
      const sw = await getSwarm(ns, 'echo-500');
      // First: a fallback names its reason.
      expect(sw.status?.fallback).toBeUndefined();
      expect(sw.status).toMatchObject({
        phase: 'Succeeded',
        version: 'v2',
        activeVersion: 'v2',
        deliveryRate: 100,
        agents: { total: 500, completed: 500, failed: 0 },
        completedAgents: '0-499',
      });
      expect(sw.status?.coordinationTimeMs).toBeGreaterThan(0);
      // 500 agents: two shards (auto, one per 300 agents), each its own pod
      // publishing its progress with its name (downward API): the operator's proof it ran.
      expect(sw.status?.shardCount).toBe(2);
      expect(sw.status?.shards?.map((x) => [x.index, x.indexes, x.pod, x.progressPod, x.phase])).toEqual([
        [0, '0-249', 'echo-500-v2-1-s0', 'echo-500-v2-1-s0', 'Succeeded'],
        [1, '250-499', 'echo-500-v2-1-s1', 'echo-500-v2-1-s1', 'Succeeded'],
      ]);
      expect(sw.status?.shards?.map((x) => x.pod)).toContain(pod.metadata.name);
      const table = await kubectl(['get', 'swarms', '-n', ns]);
      expect(table.stdout).toMatch(/echo-500\s+v2\s+hybrid\s+2\s+500\s+500\s+100\s+Succeeded/);
      // The other samples: pinned to V1, and left to the rollout (no policy here: the operator's default).
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/docs-review', 'swarm/test-triage', '--timeout=300s'], { timeoutMs: 310_000 });
      expect((await getSwarm(ns, 'docs-review')).status).toMatchObject({
        phase: 'Succeeded',
        version: 'v1',
        deliveryRate: 100,
        agents: { total: 10, completed: 10, failed: 0 },
      });
      expect((await getSwarm(ns, 'test-triage')).status).toMatchObject({
        phase: 'Succeeded',
        deliveryRate: 100,
        agents: { total: 20, completed: 20, failed: 0 },
      });
      // Real work: one agent per engine shell file, each answering with shellcheck's diff.
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/lint-fixers', '--timeout=300s'], { timeoutMs: 310_000 });
      expect((await getSwarm(ns, 'lint-fixers')).status).toMatchObject({
        phase: 'Succeeded',
        version: 'v2',
        deliveryRate: 100,
        agents: { total: LINT_FIXERS_FILES, completed: LINT_FIXERS_FILES, failed: 0 },
      });
    } finally {
      await dropNamespace(ns);
    }
  });

  it('falls back to a V1 pod when the V2 preflight finds /dev/shm too small, with the real reason in status and an event', async () => {
    const ns = await freshNamespace('fallback');
    try {
      // 500 agents x 64 KiB output need about 34 MiB; the tmpfs has 16 MiB. The
      // startup limit is generous: on a loaded node the coordinator may take
      // long to reach its preflight, and this test is about the preflight (of
      // one pod: shards 1, where auto would split 500 agents in two).
      await apply(
        ns,
        swarm('small-shm', {
          agents: 500,
          shards: 1,
          coordination: { version: 'v2', fallbackEnabled: true, fallbackTimeoutSeconds: 60 },
          v2: { shmSizeLimit: '16Mi' },
        }),
      );
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/small-shm', '--timeout=300s'], { timeoutMs: 310_000 });
      const sw = await getSwarm(ns, 'small-shm');
      const reason = /not enough space on \/dev\/shm\S*: about \d+ KiB needed for 500 agents, 16\d{3} KiB free/;
      expect(sw.status).toMatchObject({
        phase: 'Succeeded',
        version: 'v2',
        activeVersion: 'v1',
        deliveryRate: 100,
        agents: { total: 500, completed: 500, failed: 0 },
      });
      expect(sw.status?.fallback?.reason).toMatch(reason);
      expect(sw.status?.conditions?.find((c) => c.type === 'FallbackActive')?.message).toMatch(reason);
      const ev = await waitFor('FallbackToV1 event', async () => (await events(ns)).find((e) => e.reason === 'FallbackToV1'));
      expect(ev.message).toMatch(reason);
      expect(ev.type).toBe('Warning');
      const pods = await swarmPods(ns, 'small-shm');
      expect(pods.find((p) => p.metadata.labels?.['swarm.cfn.dev/version'] === 'v1')?.status?.phase).toBe('Succeeded');
    } finally {
      await dropNamespace(ns);
    }
  });

  it('deleting the Swarm removes its pod, its /dev/shm tmpfs and its agent processes', async () => {
    const ns = await freshNamespace('delete');
    try {
      await apply(
        ns,
        swarm('long', {
          agents: 4,
          coordination: { version: 'v2' },
          v2: { shmSizeLimit: '32Mi' },
          agent: { command: ['sleep', '300'], timeoutSeconds: 600, retries: 0, concurrency: 4 },
        }),
      );
      const pod = await waitFor(
        'a running coordinator pod',
        async () => (await swarmPods(ns, 'long')).find((p) => p.status?.phase === 'Running'),
        180_000,
        200,
      );
      await waitFor('agents running', async () => {
        const ps = await kubectl(['exec', '-n', ns, pod.metadata.name, '--', 'sh', '-c', 'ls /dev/shm/cfn/*/pids/ 2>/dev/null | wc -l'], { allowFail: true });
        return Number(ps.stdout.trim()) > 0 ? true : undefined;
      });
      const uid = pod.metadata.uid;
      if (MODE === 'local') {
        expect(hostMounts(`/pods/${uid}/volumes/kubernetes.io~empty-dir/dshm`).join('\n')).toMatch(/ tmpfs /);
        expect(podProcesses(uid).length).toBeGreaterThan(0);
      }
      await kubectl(['delete', 'swarm', '-n', ns, 'long', '--timeout=120s'], { timeoutMs: 130_000 });
      await waitFor('pods gone', async () => ((await swarmPods(ns, 'long')).length === 0 ? true : undefined), 120_000);
      if (MODE === 'local') {
        const stateDir = process.env.E2E_STATE_DIR ?? '';
        await waitFor(
          'tmpfs and pod dir removed on the node',
          async () => {
            if (hostMounts(`/pods/${uid}/`).length > 0) return undefined;
            return existsSync(path.join(stateDir, 'node/kubelet/pods', uid)) ? undefined : true;
          },
          60_000,
        );
        await waitFor('no process of the pod left', async () => (podProcesses(uid).length === 0 ? true : undefined), 60_000);
      }
    } finally {
      await dropNamespace(ns);
    }
  });
});
