// RolloutPolicy with real coordinator pods: 10% of 50 swarms go to V2 (sticky
// hash of the name), and a real V2 failure breaches the gates and rolls back.
import { describe, expect, it, jest } from '@jest/globals';
import { z } from 'zod';
import { apply, dropNamespace, events, freshNamespace, kubectl, kubectlJson, listSwarms, waitFor } from './kube.js';

const policy = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'swarm.cfn.dev/v1alpha1', kind: 'RolloutPolicy', metadata: { name }, spec });
// 50 coordinator pods start at once on 2 shared cores: a V2 pod may take
// minutes to become ready, which is no V2 failure (the startup limit is 600 s).
const swarm = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: {
    objective: 'e2e rollout',
    agents: 2,
    topology: 'flat',
    coordination: { version: 'auto', fallbackTimeoutSeconds: 600 },
    agent: { command: ['cat'], timeoutSeconds: 60, retries: 0, concurrency: 2 },
    v2: { shmSizeLimit: '16Mi' },
    ...extra,
  },
});

const policyStatus = z.object({
  spec: z.object({ v2Percentage: z.number() }),
  status: z
    .object({
      phase: z.string().optional(),
      effectivePercentage: z.number().optional(),
      observed: z.object({ v1Swarms: z.number().optional(), v2Swarms: z.number().optional() }).partial().optional(),
      conditions: z.array(z.object({ type: z.string(), status: z.string(), reason: z.string().optional(), message: z.string().optional() })).optional(),
    })
    .optional(),
});

// Real pods on a loaded machine: minutes, not seconds.
jest.setTimeout(900_000);

describe('RolloutPolicy on a real node', () => {
  it('routes about a tenth of 50 swarms to V2 at 10%; all complete in real pods', async () => {
    const ns = await freshNamespace('rollout');
    try {
      await apply(ns, policy('canary', { v2Percentage: 10, default: true }));
      await kubectl(['apply', '-n', ns, '-f', '-'], {
        input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: Array.from({ length: 50 }, (_, i) => swarm(`s-${String(i).padStart(2, '0')}`)) }),
      });
      const decided = await waitFor(
        'every swarm routed',
        async () => {
          const all = await listSwarms(ns);
          return all.length === 50 && all.every((s) => s.status?.version) ? all : undefined;
        },
        120_000,
        1000,
      );
      const v2 = decided.filter((s) => s.status?.version === 'v2');
      // Sticky hash buckets: about 5 of 50.
      expect(v2.length).toBeGreaterThanOrEqual(1);
      expect(v2.length).toBeLessThanOrEqual(12);
      for (const s of decided) expect(s.status?.versionReason).toMatch(/^RolloutPolicy canary at 10%: bucket \d+ (<|>=) 10$/);
      const done = await waitFor(
        'all 50 complete',
        async () => {
          const all = await listSwarms(ns);
          return all.every((s) => s.status?.phase === 'Succeeded') ? all : undefined;
        },
        600_000,
        2000,
      );
      for (const s of done)
        expect(s.status).toMatchObject({ deliveryRate: 100, agents: { total: 2, completed: 2, failed: 0 }, activeVersion: s.status?.version });
      // Both figures asserted below are waited for: the policy may count the V2 swarms before the last V1 ones.
      const p = await waitFor('policy observed', async () => {
        const got = await kubectlJson(policyStatus, ['get', 'rolloutpolicy', '-n', ns, 'canary']);
        const o = got.status?.observed;
        return o?.v2Swarms === v2.length && o.v1Swarms === 50 - v2.length ? got : undefined;
      });
      expect(p.status).toMatchObject({ effectivePercentage: 10, observed: { v1Swarms: 50 - v2.length, v2Swarms: v2.length } });
    } finally {
      await dropNamespace(ns);
    }
  });

  it('rolls back to 0% when a real V2 failure breaches the gates, and says why', async () => {
    const ns = await freshNamespace('breach');
    try {
      await apply(ns, policy('risky', { v2Percentage: 100, default: true, rollbackOnBreach: true, gates: { minSamples: 3, maxFallbackRate: 5 } }));
      // Two fit their tmpfs; one (500 agents in 16 MiB, one shard) fails the V2 preflight and falls back.
      await apply(ns, swarm('ok-a'));
      await apply(ns, swarm('ok-b'));
      await apply(
        ns,
        swarm('too-big', { agents: 500, topology: 'auto', shards: 1, agent: { command: ['cat'], timeoutSeconds: 60, retries: 0, concurrency: 16 } }),
      );
      const p = await waitFor(
        'rolled back',
        async () => {
          const got = await kubectlJson(policyStatus, ['get', 'rolloutpolicy', '-n', ns, 'risky']);
          return got.status?.phase === 'RolledBack' ? got : undefined;
        },
        300_000,
        1000,
      );
      expect(p.status?.effectivePercentage).toBe(0);
      expect(p.spec.v2Percentage).toBe(100);
      const rb = p.status?.conditions?.find((c) => c.type === 'RolledBack');
      expect(rb).toMatchObject({ status: 'True', reason: 'GateBreached', message: 'fallback rate 33.33% > 5% over 3 V2 swarms (1 fell back)' });
      const ev = await waitFor('RolledBack event', async () => (await events(ns)).find((e) => e.reason === 'RolledBack'));
      expect(ev.message).toBe('100% -> 0%: fallback rate 33.33% > 5% over 3 V2 swarms (1 fell back)');
      const fellBack = (await listSwarms(ns)).find((s) => s.metadata.name === 'too-big');
      expect(fellBack?.status?.fallback?.reason).toMatch(/not enough space on \/dev\/shm/);
      // New swarms now go to V1.
      await apply(ns, swarm('after'));
      const after = await waitFor('routed', async () => (await listSwarms(ns)).find((s) => s.metadata.name === 'after' && s.status?.version));
      expect(after.status?.version).toBe('v1');
    } finally {
      await dropNamespace(ns);
    }
  });
});
