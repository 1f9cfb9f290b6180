// Killing things mid-run on a real node: the coordinator pod (force-deleted)
// and the operator pod. Every agent appends its index to a file on a hostPath
// volume (the swarm's results PVC), so re-runs are counted, not guessed.
import { describe, expect, it, jest } from '@jest/globals';
import { rmSync } from 'node:fs';
import { z } from 'zod';
import { MODE, apply, dropNamespace, freshNamespace, getSwarm, indexSet, kubectl, kubectlJson, operatorImage, swarmPods, waitFor } from './kube.js';

const AGENTS = 40;

/** Runs `script` as root in a pod with the hostPath `dir` at /d; resolves with its log. */
async function hostPathPod(ns: string, name: string, dir: string, script: string): Promise<string> {
  const image = await operatorImage();
  await kubectl(['apply', '-n', ns, '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        restartPolicy: 'Never',
        containers: [{ name: 'c', image, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', script], securityContext: { runAsUser: 0 }, volumeMounts: [{ name: 'd', mountPath: '/d' }] }],
        volumes: [{ name: 'd', hostPath: { path: dir, type: 'DirectoryOrCreate' } }],
      },
    }),
  });
  await waitFor(`pod ${name} done`, async () => {
    const p = await kubectlJson(z.object({ status: z.object({ phase: z.string().optional() }) }), ['get', 'pod', '-n', ns, name]);
    if (p.status.phase === 'Failed') throw new Error(`pod ${name} failed`);
    return p.status.phase === 'Succeeded' ? true : undefined;
  }, 120_000);
  const { stdout } = await kubectl(['logs', '-n', ns, name]);
  await kubectl(['delete', 'pod', '-n', ns, name, '--wait=false']);
  return stdout;
}

/** A hostPath PV + bound PVC for the swarm's results, writable by the coordinator (uid 65532). */
async function resultsVolume(ns: string, name: string): Promise<string> {
  const dir = `/tmp/swarm-e2e-${ns}-${name}`;
  await hostPathPod(ns, `prep-${name}`, dir, 'chmod 0777 /d && : > /d/runs.log && chmod 0666 /d/runs.log');
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `${ns}-${name}`, labels: { 'e2e-namespace': ns } },
      spec: { capacity: { storage: '64Mi' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: '', hostPath: { path: dir, type: 'Directory' } },
    }),
  });
  await kubectl(['apply', '-n', ns, '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name },
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: '', volumeName: `${ns}-${name}`, resources: { requests: { storage: '64Mi' } } },
    }),
  });
  return dir;
}

/** How many times each agent index ran (lines of runs.log). */
async function runCounts(ns: string, name: string, dir: string): Promise<Map<number, number>> {
  const log = await hostPathPod(ns, `read-${name}`, dir, 'cat /d/runs.log');
  const counts = new Map<number, number>();
  for (const line of log.split('\n')) {
    if (!/^\d+$/.test(line)) continue;
    counts.set(Number(line), (counts.get(Number(line)) ?? 0) + 1);
  }
  return counts;
}

const swarm = (name: string, claim: string) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: {
    objective: 'e2e disruption',
    agents: AGENTS,
    topology: 'flat',
    coordination: { version: 'v2', fallbackEnabled: true, fallbackTimeoutSeconds: 60 },
    // Appends its index (one short O_APPEND write), works a while, answers.
    agent: { command: ['sh', '-c', 'echo "$AGENT_INDEX" >> /results/runs.log; sleep 1; echo "done $AGENT_INDEX"'], timeoutSeconds: 60, retries: 0, concurrency: 4 },
    v2: { shmSizeLimit: '64Mi' },
    results: { type: 'persistentVolumeClaim', claimName: claim },
  },
});

async function cleanup(ns: string): Promise<void> {
  await dropNamespace(ns);
  await kubectl(['delete', 'pv', '-l', `e2e-namespace=${ns}`, '--wait=false'], { allowFail: true });
  // The node is this machine: its hostPath dirs go too (kind's go with the cluster).
  if (MODE === 'local') rmSync(`/tmp/swarm-e2e-${ns}-results`, { recursive: true, force: true });
}

// Real pods on a loaded machine: minutes, not seconds.
jest.setTimeout(900_000);

describe('disruption on a real node', () => {
  it('a force-deleted coordinator pod: the swarm still completes and delivered agents are not re-run', async () => {
    const ns = await freshNamespace('kill-coord');
    try {
      const dir = await resultsVolume(ns, 'results');
      await apply(ns, swarm('victim', 'results'));
      const before = await waitFor('some agents delivered', async () => {
        const s = await getSwarm(ns, 'victim');
        return (s.status?.agents?.completed ?? 0) >= 8 && s.status?.coordinatorPod ? s : undefined;
      }, 180_000, 200);
      expect(before.status).toMatchObject({ activeVersion: 'v2', coordinatorAttempts: 1 });
      const delivered = indexSet(before.status?.completedAgents);
      expect(delivered.size).toBeGreaterThanOrEqual(8);
      expect(delivered.size).toBeLessThan(AGENTS);
      await kubectl(['delete', 'pod', '-n', ns, before.status?.coordinatorPod ?? '', '--grace-period=0', '--force'], { allowFail: false });
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/victim', '--timeout=300s'], { timeoutMs: 310_000 });
      const after = await getSwarm(ns, 'victim');
      expect(after.status).toMatchObject({ phase: 'Succeeded', deliveryRate: 100, agents: { total: AGENTS, completed: AGENTS, failed: 0 } });
      expect(after.status?.coordinatorAttempts).toBeGreaterThanOrEqual(2);
      expect(after.status?.fallback?.reason).toMatch(/gone|lost|deleted/);
      const counts = await runCounts(ns, 'results', dir);
      for (let i = 0; i < AGENTS; i++) expect([i, counts.get(i) ?? 0]).not.toEqual([i, 0]);
      // Delivered before the kill: ran exactly once. (Agents running at the kill may run again.)
      for (const i of delivered) expect([i, counts.get(i)]).toEqual([i, 1]);
    } finally {
      await cleanup(ns);
    }
  });

  it('a force-deleted operator pod: nothing lost, nothing duplicated', async () => {
    const ns = await freshNamespace('kill-op');
    try {
      const dir = await resultsVolume(ns, 'results');
      await apply(ns, swarm('steady', 'results'));
      const before = await waitFor('some agents delivered', async () => {
        const s = await getSwarm(ns, 'steady');
        return (s.status?.agents?.completed ?? 0) >= 8 ? s : undefined;
      }, 180_000, 200);
      // Still on its first V2 pod when the operator dies (so what follows is the restart's doing).
      expect(before.status).toMatchObject({ activeVersion: 'v2', coordinatorAttempts: 1 });
      const ops = await kubectlJson(z.object({ items: z.array(z.object({ metadata: z.object({ name: z.string(), namespace: z.string() }) })) }), ['get', 'pods', '-A', '-l', 'app.kubernetes.io/name=swarm-operator']);
      expect(ops.items.length).toBeGreaterThan(0);
      for (const p of ops.items) await kubectl(['delete', 'pod', '-n', p.metadata.namespace, p.metadata.name, '--grace-period=0', '--force']);
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/steady', '--timeout=300s'], { timeoutMs: 310_000 });
      const after = await getSwarm(ns, 'steady');
      expect(after.status).toMatchObject({ phase: 'Succeeded', activeVersion: 'v2', deliveryRate: 100, coordinatorAttempts: 1, agents: { total: AGENTS, completed: AGENTS, failed: 0 } });
      expect(after.status?.fallback).toBeUndefined();
      expect((await swarmPods(ns, 'steady')).map((p) => p.metadata.name)).toEqual(['steady-v2-1']);
      const counts = await runCounts(ns, 'results', dir);
      for (let i = 0; i < AGENTS; i++) expect([i, counts.get(i)]).toEqual([i, 1]);
      await kubectl(['rollout', 'status', '-n', ops.items[0]?.metadata.namespace ?? '', 'deployment/swarm-operator', '--timeout=120s'], { timeoutMs: 130_000 });
    } finally {
      await cleanup(ns);
    }
  });
});
