// What status says about a V2 swarm on a real node is what happened: a pod
// that cannot be scheduled is Pending with the scheduler's own message (never
// a fallback), and a V2 coordinator that fails mid-run falls back to V1
// without running a delivered agent twice. Every agent appends its index to a
// file on a hostPath volume, so runs are counted, not guessed.
import { describe, expect, it, jest } from '@jest/globals';
import { apply, dropNamespace, events, freshNamespace, getSwarm, indexSet, kubectl, sleep, swarmPods, waitFor } from './kube.js';
import { dropResultsNamespace, recordingSwarm, resultsVolume, runWitness } from './results-volume.js';

// Real pods on a loaded machine: minutes, not seconds.
jest.setTimeout(900_000);

const AGENTS = 40;

describe('status tells the truth on a real node', () => {
  it("a V2 swarm whose pod asks for 50 CPUs is Pending with the scheduler's message: no fallback, no FallbackToV1 event", async () => {
    const ns = await freshNamespace('unschedulable');
    try {
      await apply(ns, {
        apiVersion: 'swarm.cfn.dev/v1alpha1',
        kind: 'Swarm',
        metadata: { name: 'huge' },
        spec: {
          objective: 'e2e unschedulable',
          agents: 3,
          coordination: { version: 'v2', fallbackTimeoutSeconds: 2 },
          agent: { command: ['cat'], resources: { requests: { cpu: '50' } } },
        },
      });
      const sw = await waitFor(
        'CoordinatorReady=False Unschedulable',
        async () => {
          const s = await getSwarm(ns, 'huge');
          return s.status?.conditions?.find((c) => c.type === 'CoordinatorReady' && c.reason === 'Unschedulable') ? s : undefined;
        },
        120_000,
        500,
      );
      const ready = sw.status?.conditions?.find((c) => c.type === 'CoordinatorReady');
      // The scheduler's own words, e.g. "0/1 nodes are available: 1 Insufficient cpu. ..."
      expect(ready?.status).toBe('False');
      expect(ready?.message).toMatch(/^coordinator pod huge-v2-1: 0\/1 nodes are available: .*Insufficient cpu/);
      // Well past fallbackTimeoutSeconds: still Pending on V2, nothing fell back.
      await sleep(6000);
      const later = await getSwarm(ns, 'huge');
      expect(later.status).toMatchObject({ phase: 'Pending', version: 'v2', activeVersion: 'v2', coordinatorAttempts: 1 });
      expect(later.status?.fallback).toBeUndefined();
      expect((await swarmPods(ns, 'huge')).map((p) => p.metadata.name)).toEqual(['huge-v2-1']);
      const evs = (await events(ns)).filter((e) => e.involvedObject.name === 'huge');
      expect(evs.filter((e) => e.reason === 'FallbackToV1')).toEqual([]);
      const warning = evs.find((e) => e.reason === 'Unschedulable');
      expect(warning?.type).toBe('Warning');
      expect(warning?.message).toMatch(/Insufficient cpu/);
    } finally {
      await dropNamespace(ns);
    }
  });

  it('a V2 coordinator that dies mid-run falls back to V1, which runs every agent not delivered: each index ran once, except those reported as re-run', async () => {
    const ns = await freshNamespace('fallback-once');
    const witness = await runWitness();
    try {
      await resultsVolume(ns, 'results');
      await apply(ns, recordingSwarm('handover', 'e2e fallback once', AGENTS, 'results', witness.agent));
      const before = await waitFor(
        'some agents delivered by V2',
        async () => {
          const s = await getSwarm(ns, 'handover');
          return (s.status?.agents?.completed ?? 0) >= 8 && s.status?.coordinatorPod ? s : undefined;
        },
        180_000,
        200,
      );
      expect(before.status).toMatchObject({ activeVersion: 'v2', coordinatorAttempts: 1 });
      const deliveredByV2 = indexSet(before.status?.completedAgents);
      expect(deliveredByV2.size).toBeLessThan(AGENTS);
      // The coordinator process itself ends (SIGTERM to its pid 1, no pod
      // deletion): its container exits 143, a failure of V2's own.
      await kubectl(['exec', '-n', ns, before.status?.coordinatorPod ?? '', '--', 'sh', '-c', 'kill -TERM 1']);
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/handover', '--timeout=300s'], { timeoutMs: 310_000 });
      const after = await getSwarm(ns, 'handover');
      expect(after.status).toMatchObject({
        phase: 'Succeeded',
        version: 'v2',
        activeVersion: 'v1',
        deliveryRate: 100,
        agents: { total: AGENTS, completed: AGENTS, failed: 0 },
      });
      expect(after.status?.fallback).toMatchObject({ from: 'v2', to: 'v1' });
      // The coordinator's own termination message says what it did before it ended.
      expect(after.status?.fallback?.reason).toMatch(
        /^V2 coordinator failed: Error: exit code 143: stopped mid-run: \d+\/40 agents delivered, \d+ interrupted$/,
      );
      expect((await events(ns)).some((e) => e.involvedObject.name === 'handover' && e.reason === 'FallbackToV1')).toBe(true);
      const rerun = indexSet(after.status?.interruptedAgents);
      expect(after.status?.rerunAgents ?? 0).toBe(rerun.size);
      const counts = witness.counts();
      // Every index ran; exactly once, except the agents V2 was running when it
      // stopped (reported in status), which ran again under V1: twice in all,
      // or once when V2's stop came before the agent's first action (the
      // witness hears of a run only once the process got that far).
      for (let i = 0; i < AGENTS; i++) {
        const n = counts.get(i) ?? 0;
        expect([i, rerun.has(i) ? n >= 1 && n <= 2 : n === 1]).toEqual([i, true]);
      }
      for (const i of deliveredByV2) expect(rerun.has(i)).toBe(false);
    } finally {
      await witness.close();
      await dropResultsNamespace(ns);
    }
  });
});
