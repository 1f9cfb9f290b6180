// Shards on three real nodes (npm run test:e2e:nodes): a swarm of 3 shards
// puts one coordinator pod on each node and adds their figures up; a node
// lost mid-run costs only its shard, which moves to another node and resumes
// past what it delivered; a swarm that cannot be fully placed says which
// shard waits and why. Agents record their runs with a witness on this
// machine, so "no agent ran twice" is counted, not assumed.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { startS3Server, type S3TestServer } from '../../s3/s3-test-server.js';
import { MODE, REPO, apply, dropNamespace, freshNamespace, hostAddress, indexSet, kubectl, kubectlJson, waitFor } from '../kube.js';
import { dropResultsNamespace, runWitness } from '../results-volume.js';

jest.setTimeout(900_000);

const shard = z.object({
  index: z.number(),
  indexes: z.string(),
  pod: z.string().optional(),
  node: z.string().optional(),
  version: z.string().optional(),
  phase: z.string().optional(),
  attempts: z.number().optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
  agents: z.object({ total: z.number(), completed: z.number(), failed: z.number() }).optional(),
  completedAgents: z.string().optional(),
});
const sharded = z.object({
  metadata: z.object({ uid: z.string() }),
  status: z
    .object({
      phase: z.string().optional(),
      deliveryRate: z.number().optional(),
      agents: z.object({ total: z.number(), completed: z.number(), failed: z.number() }).optional(),
      completedAgents: z.string().optional(),
      topology: z.string().optional(),
      fallback: z.unknown().optional(),
      shards: z.array(shard).optional(),
      conditions: z.array(z.object({ type: z.string(), status: z.string(), reason: z.string().optional(), message: z.string().optional() })).optional(),
    })
    .optional(),
});
type Sharded = z.infer<typeof sharded>;
const getSharded = (ns: string, name: string): Promise<Sharded> => kubectlJson(sharded, ['get', 'swarm', '-n', ns, name]);

function cfn(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO, 'bin/cfn.js'), ...args],
      { env: process.env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

const nodeScript = join(REPO, 'test/cluster/node.sh');
const cluster = () => process.env.E2E_CLUSTER ?? 'e2e3';
function node(command: 'lose' | 'restore', n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [nodeScript, command, '--name', cluster(), '--node', String(n)], { timeout: 180_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`node.sh ${command} --node ${n}: ${stderr}`)) : resolve(),
    );
  });
}

const swarmOf = (name: string, agents: number, shards: number, command: string[], extra: Record<string, unknown> = {}) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: {
    objective: `e2e shards ${name}`,
    agents,
    shards,
    coordination: { version: 'v2', fallbackEnabled: true, fallbackTimeoutSeconds: 60 },
    agent: { command, timeoutSeconds: 120, retries: 0, concurrency: 3 },
    v2: { shmSizeLimit: '64Mi' },
    ...extra,
  },
});

const local = MODE === 'local' ? describe : describe.skip;

local('shards on three nodes', () => {
  let s3: S3TestServer | undefined;
  beforeAll(async () => {
    const nodes = await kubectlJson(z.object({ items: z.array(z.unknown()) }), ['get', 'nodes']);
    expect(nodes.items).toHaveLength(3);
    s3 = startS3Server({ address: await hostAddress(), buckets: ['results'] });
  }, 300_000);
  afterAll(() => s3?.stop());

  it('a swarm of 3 shards puts one shard on each node and completes with the right totals, its results one set', async () => {
    const ns = await freshNamespace('shards');
    const witness = await runWitness();
    const AGENTS = 30;
    try {
      await apply(ns, swarmOf('three', AGENTS, 3, witness.agent));
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/three', '--timeout=400s'], { timeoutMs: 410_000 });
      const s = await getSharded(ns, 'three');
      expect(s.status).toMatchObject({ phase: 'Succeeded', deliveryRate: 100, topology: 'hybrid', agents: { total: AGENTS, completed: AGENTS, failed: 0 } });
      expect(s.status?.fallback).toBeUndefined();
      const shards = s.status?.shards ?? [];
      expect(shards.map((x) => [x.index, x.indexes, x.phase, x.agents])).toEqual([
        [0, '0-9', 'Succeeded', { total: 10, completed: 10, failed: 0 }],
        [1, '10-19', 'Succeeded', { total: 10, completed: 10, failed: 0 }],
        [2, '20-29', 'Succeeded', { total: 10, completed: 10, failed: 0 }],
      ]);
      expect(shards.map((x) => x.pod)).toEqual(['three-v2-1-s0', 'three-v2-1-s1', 'three-v2-1-s2']);
      // One shard per node (the default topology spread).
      expect(new Set(shards.map((x) => x.node)).size).toBe(3);
      expect(indexSet(s.status?.completedAgents).size).toBe(AGENTS);
      const counts = witness.counts();
      for (let i = 0; i < AGENTS; i++) expect([i, counts.get(i)]).toEqual([i, 1]);
      // Every shard's results (one claim per shard on its node) come back as one set.
      const cli = await cfn(['results', 'three', '-n', ns]);
      expect(cli.code).toBe(0);
      const lines = cli.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { index: number; output: string });
      expect(lines.map((l) => [l.index, l.output])).toEqual(Array.from({ length: AGENTS }, (_, i) => [i, `done ${i}\n`]));
    } finally {
      await witness.close();
      await dropResultsNamespace(ns);
    }
  });

  it('a node lost mid-run: only its shard moves, to another node, resumes past what it delivered, and the swarm completes', async () => {
    const store = s3!;
    const ns = await freshNamespace('node-lost');
    const witness = await runWitness();
    const AGENTS = 45;
    let lost: number | undefined;
    try {
      await apply(ns, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 's3-creds' },
        stringData: { AWS_ACCESS_KEY_ID: store.accessKeyId, AWS_SECRET_ACCESS_KEY: store.secretAccessKey },
      });
      // Each agent works 2 s after it reports its run: 15 agents, 3 at a time, ~10 s per shard.
      const command = witness.agent.map((a) => a.replace('sleep 1', 'sleep 2'));
      await apply(
        ns,
        swarmOf('survivor', AGENTS, 3, command, {
          results: { type: 's3', s3: { endpoint: store.endpoint, bucket: 'results', prefix: 'nodes/', credentialsSecretRef: { name: 's3-creds' } } },
        }),
      );
      // Shard 1 has delivered some, not all.
      const before = await waitFor(
        'shard 1 delivered some agents',
        async () => {
          const s = await getSharded(ns, 'survivor');
          const s1 = s.status?.shards?.find((x) => x.index === 1);
          return s1?.node && (s1.agents?.completed ?? 0) >= 3 && (s1.agents?.completed ?? 0) < 15 ? s : undefined;
        },
        300_000,
        200,
      );
      const s1 = before.status?.shards?.find((x) => x.index === 1);
      const others = new Map((before.status?.shards ?? []).filter((x) => x.index !== 1).map((x) => [x.index, x.pod]));
      const delivered = indexSet(s1?.completedAgents);
      lost = Number((s1?.node ?? '').replace(/^swarm-node-/, ''));
      expect(Number.isInteger(lost)).toBe(true);
      await node('lose', lost);

      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/survivor', '--timeout=600s'], { timeoutMs: 610_000 });
      const after = await getSharded(ns, 'survivor');
      expect(after.status).toMatchObject({ phase: 'Succeeded', deliveryRate: 100, agents: { total: AGENTS, completed: AGENTS, failed: 0 } });
      // Lost from outside: replaced with the same version, never a fallback.
      expect(after.status?.fallback).toBeUndefined();
      const moved = after.status?.shards?.find((x) => x.index === 1);
      expect(moved?.attempts).toBeGreaterThanOrEqual(2);
      expect(moved?.version).toBe('v2');
      expect(moved?.node).not.toBe(s1?.node);
      // The other shards never noticed: still their first pod.
      for (const x of after.status?.shards ?? []) if (x.index !== 1) expect([x.index, x.pod, x.attempts]).toEqual([x.index, others.get(x.index), 1]);
      const counts = witness.counts();
      for (let i = 0; i < AGENTS; i++) expect([i, (counts.get(i) ?? 0) >= 1]).toEqual([i, true]);
      // Delivered before the loss: ran exactly once; at most the 3 agents running on the lost node ran again.
      for (const i of delivered) expect([i, counts.get(i)]).toEqual([i, 1]);
      const reruns = [...counts.values()].reduce((a, n) => a + n - 1, 0);
      expect(reruns).toBeLessThanOrEqual(3);
      // One record per index in the store, whichever shard and node stored it.
      const runDir = join(store.bucketDir('results'), `nodes/${ns}/survivor/${after.metadata.uid}/`);
      expect(readdirSync(runDir).sort((a, b) => parseInt(a, 10) - parseInt(b, 10))).toEqual(Array.from({ length: AGENTS }, (_, i) => `${i}.json`));
    } finally {
      if (lost !== undefined) await node('restore', lost);
      await witness.close();
      await dropNamespace(ns);
    }
  });

  it('a swarm that cannot be fully placed says which shard waits and why, and runs the rest', async () => {
    const ns = await freshNamespace('unplaced');
    try {
      // Each node has 2 cpus: one 1500m shard fits per node, the fourth nowhere.
      await apply(
        ns,
        swarmOf('crowded', 4, 4, ['sleep', '30'], {
          agent: { command: ['sleep', '30'], timeoutSeconds: 120, retries: 0, concurrency: 1, resources: { requests: { cpu: '1500m' } } },
          results: { type: 'emptyDir' },
        }),
      );
      const s = await waitFor(
        'one shard Pending for want of cpu',
        async () => {
          const x = await getSharded(ns, 'crowded');
          const waiting = (x.status?.shards ?? []).filter((sh) => sh.phase === 'Pending' && /Insufficient cpu/.test(sh.message ?? ''));
          const running = (x.status?.shards ?? []).filter((sh) => sh.phase === 'Running');
          return waiting.length === 1 && running.length === 3 ? x : undefined;
        },
        300_000,
        500,
      );
      const waiting = s.status?.shards?.find((sh) => sh.phase === 'Pending');
      expect(waiting?.reason).toMatch(/Unschedulable/);
      expect(new Set(s.status?.shards?.filter((sh) => sh.phase === 'Running').map((sh) => sh.node)).size).toBe(3);
      const ready = s.status?.conditions?.find((c) => c.type === 'CoordinatorReady');
      expect(ready?.message ?? '').toContain(`shard ${waiting?.index}`);
      expect(ready?.message ?? '').toMatch(/Insufficient cpu/);
      // Waiting is never a fallback.
      expect(s.status?.fallback).toBeUndefined();
    } finally {
      await dropNamespace(ns);
    }
  });
});
