// Killing things mid-run on a real node: the coordinator pod (force-deleted)
// and the operator pod. Agents record their runs (results-volume.ts).
import { describe, expect, it, jest } from '@jest/globals';
import { z } from 'zod';
import { apply, freshNamespace, getSwarm, indexSet, kubectl, kubectlJson, swarmPods, waitFor } from './kube.js';
import { dropResultsNamespace, recordingSwarm, resultsVolume, runWitness } from './results-volume.js';
import type { RunWitness } from './results-volume.js';

const AGENTS = 40;

const swarm = (name: string, claim: string, witness: RunWitness) => recordingSwarm(name, 'e2e disruption', AGENTS, claim, witness.agent);

// Real pods on a loaded machine: minutes, not seconds.
jest.setTimeout(900_000);

describe('disruption on a real node', () => {
  it('a force-deleted coordinator pod: the swarm still completes and delivered agents are not re-run', async () => {
    const ns = await freshNamespace('kill-coord');
    const witness = await runWitness();
    try {
      await resultsVolume(ns, 'results');
      await apply(ns, swarm('victim', 'results', witness));
      const before = await waitFor(
        'some agents delivered',
        async () => {
          const s = await getSwarm(ns, 'victim');
          return (s.status?.agents?.completed ?? 0) >= 8 && s.status?.coordinatorPod ? s : undefined;
        },
        180_000,
        200,
      );
      expect(before.status).toMatchObject({ activeVersion: 'v2', coordinatorAttempts: 1 });
      const delivered = indexSet(before.status?.completedAgents);
      expect(delivered.size).toBeGreaterThanOrEqual(8);
      expect(delivered.size).toBeLessThan(AGENTS);
      await kubectl(['delete', 'pod', '-n', ns, before.status?.coordinatorPod ?? '', '--grace-period=0', '--force'], { allowFail: false });
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/victim', '--timeout=300s'], { timeoutMs: 310_000 });
      const after = await getSwarm(ns, 'victim');
      expect(after.status).toMatchObject({ phase: 'Succeeded', deliveryRate: 100, agents: { total: AGENTS, completed: AGENTS, failed: 0 } });
      expect(after.status?.coordinatorAttempts).toBeGreaterThanOrEqual(2);
      // Lost from outside: replaced by the same version, not a fallback.
      expect(after.status?.activeVersion).toBe('v2');
      expect(after.status?.fallback).toBeUndefined();
      const counts = witness.counts();
      for (let i = 0; i < AGENTS; i++) expect([i, counts.get(i) ?? 0]).not.toEqual([i, 0]);
      // Delivered before the kill: ran exactly once. (Agents running at the kill may run again.)
      for (const i of delivered) expect([i, counts.get(i)]).toEqual([i, 1]);
    } finally {
      await witness.close();
      await dropResultsNamespace(ns);
    }
  });

  it('a force-deleted operator pod: nothing lost, nothing duplicated', async () => {
    const ns = await freshNamespace('kill-op');
    const witness = await runWitness();
    try {
      await resultsVolume(ns, 'results');
      await apply(ns, swarm('steady', 'results', witness));
      const before = await waitFor(
        'some agents delivered',
        async () => {
          const s = await getSwarm(ns, 'steady');
          return (s.status?.agents?.completed ?? 0) >= 8 ? s : undefined;
        },
        180_000,
        200,
      );
      // Still on its first V2 pod when the operator dies (so what follows is the restart's doing).
      expect(before.status).toMatchObject({ activeVersion: 'v2', coordinatorAttempts: 1 });
      const ops = await kubectlJson(z.object({ items: z.array(z.object({ metadata: z.object({ name: z.string(), namespace: z.string() }) })) }), [
        'get',
        'pods',
        '-A',
        '-l',
        'app.kubernetes.io/name=swarm-operator',
      ]);
      expect(ops.items.length).toBeGreaterThan(0);
      for (const p of ops.items) await kubectl(['delete', 'pod', '-n', p.metadata.namespace, p.metadata.name, '--grace-period=0', '--force']);
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/steady', '--timeout=300s'], { timeoutMs: 310_000 });
      const after = await getSwarm(ns, 'steady');
      expect(after.status).toMatchObject({
        phase: 'Succeeded',
        activeVersion: 'v2',
        deliveryRate: 100,
        coordinatorAttempts: 1,
        agents: { total: AGENTS, completed: AGENTS, failed: 0 },
      });
      expect(after.status?.fallback).toBeUndefined();
      expect((await swarmPods(ns, 'steady')).map((p) => p.metadata.name)).toEqual(['steady-v2-1']);
      const counts = witness.counts();
      for (let i = 0; i < AGENTS; i++) expect([i, counts.get(i)]).toEqual([i, 1]);
      await kubectl(['rollout', 'status', '-n', ops.items[0]?.metadata.namespace ?? '', 'deployment/swarm-operator', '--timeout=120s'], { timeoutMs: 130_000 });
    } finally {
      await witness.close();
      await dropResultsNamespace(ns);
    }
  });
});
