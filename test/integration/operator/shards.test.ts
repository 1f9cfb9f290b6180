// A Swarm of several shards on a real API server: one coordinator pod per
// shard (named, labelled, spread), one results claim per shard, one status
// summed from the shards' entries, failures that stay with their shard, and
// spec.suspend. The test plays the kubelet (pod status) and runs the shard
// coordinators' commands as local processes with their pods' env and tokens.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectorySource } from '../../../operator/results/directory-sink.js';
import { StatusPublisher } from '../../../operator/coordinator/status-publisher.js';
import {
  client,
  createNamespace,
  deleteNamespace,
  events,
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
  tokenKubeconfig,
  waitFor,
} from './harness.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';
import type { PodObject, SwarmObject } from './harness.js';
import { agentResponse } from '../../helpers/agent-response.js';

const c = client();
let ns: string;
let op: RunningOperator;
const work = mkdtempSync(join(tmpdir(), 'cfn-shards-'));
const shm = `/dev/shm/cfn-it-shards-${process.pid}`;

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'shards');
  op = await runOperator({ namespaces: [ns] });
});
afterAll(async () => {
  await op?.stop();
  await deleteNamespace(c, ns);
  rmSync(work, { recursive: true, force: true });
  for (const i of [0, 1, 2]) rmSync(`${shm}-s${i}`, { recursive: true, force: true });
});

interface ShardEntry {
  index: number;
  indexes: string;
  pod?: string;
  version?: string;
  phase?: string;
  attempts?: number;
  reason?: string;
  message?: string;
  fallback?: { reason: string };
  agents?: { total: number; completed: number; failed: number };
  completedAgents?: string;
}
type ShardedSwarm = SwarmObject & { status?: SwarmObject['status'] & { shards?: ShardEntry[]; topology?: string; results?: { stored: number } } };

const swarmOf = (name: string) => getSwarm(c, ns, name) as Promise<ShardedSwarm>;
const podsOf = async (name: string) => (await listPods(c, ns)).filter((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === name);
const podNamed = async (name: string) => (await listPods(c, ns)).find((p) => p.metadata.name === name);
const until = <T>(what: string, name: string, check: (s: ShardedSwarm) => T | undefined, timeoutMs?: number) =>
  waitFor(
    what,
    async () => {
      const s = await swarmOf(name);
      return check(s);
    },
    timeoutMs,
  );

/** Runs a shard pod's command here, with its own tmpfs directory (each pod has its own /dev/shm). */
async function runShardPod(pod: PodObject) {
  const shard = pod.metadata.labels['swarm.cfn.dev/shard'];
  return runPodCommandHere(pod, {
    work,
    shm: `${shm}-s${shard}`,
    kubeconfig: await tokenKubeconfig(c, ns, pod.spec.serviceAccountName, work),
    env: { POD_NAME: pod.metadata.name },
  });
}

describe('a swarm of three shards', () => {
  it('three pods named, labelled and spread, one claim each; their coordinators publish into their entries; one status sums them and completes with the right totals', async () => {
    const marker = join(work, 'ran-3.log');
    const agent = ['sh', '-c', `echo "$AGENT_INDEX" >> ${marker}`];
    await c.create(swarmPath(ns), swarmManifest(ns, 'three', { agents: 10, shards: 3, coordination: { version: 'v2' }, agent: { command: agent } }));
    const pods = await waitFor('3 pods', async () => {
      const p = await podsOf('three');
      return p.length === 3 ? p.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)) : undefined;
    });
    expect(pods.map((p) => p.metadata.name)).toEqual(['three-v2-1-s0', 'three-v2-1-s1', 'three-v2-1-s2']);
    expect(pods.map((p) => p.metadata.labels['swarm.cfn.dev/shard'])).toEqual(['0', '1', '2']);
    expect(pods.map((p) => p.spec.containers[0]!.env.find((e) => e.name === 'CFN_SHARD')?.value)).toEqual(['0', '1', '2']);
    for (const p of pods) {
      expect((p.spec as { topologySpreadConstraints?: unknown }).topologySpreadConstraints).toEqual([
        {
          maxSkew: 1,
          topologyKey: 'kubernetes.io/hostname',
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: { 'swarm.cfn.dev/swarm': 'three' } },
        },
      ]);
    }
    const claims = (await c.get<{ items: Array<{ metadata: { name: string } }> }>(`/api/v1/namespaces/${ns}/persistentvolumeclaims`)).items
      .map((x) => x.metadata.name)
      .filter((n) => n.startsWith('three-'));
    expect(claims.sort()).toEqual(['three-results-0', 'three-results-1', 'three-results-2']);
    const pending = await until('3 entries', 'three', (s) => (s.status?.shards?.length === 3 ? s : undefined));
    expect(pending.status).toMatchObject({ topology: 'hybrid', phase: 'Pending' });
    expect(pending.status?.coordinatorPod).toBeUndefined();
    expect(pending.status?.shards?.map((e) => [e.index, e.indexes, e.pod, e.version])).toEqual([
      [0, '0-2', 'three-v2-1-s0', 'v2'],
      [1, '3-5', 'three-v2-1-s1', 'v2'],
      [2, '6-9', 'three-v2-1-s2', 'v2'],
    ]);

    for (const p of pods) await setPodStatus(c, ns, p.metadata.name, podRunning(true));
    await until('Running', 'three', (s) =>
      s.status?.phase === 'Running' && s.status.conditions?.find((x) => x.type === 'CoordinatorReady')?.status === 'True' ? true : undefined,
    );
    const runs = await Promise.all(pods.map((p) => runShardPod(p)));
    expect(await Promise.all(runs.map((r) => r.done))).toEqual([0, 0, 0]);
    for (const p of pods) await setPodStatus(c, ns, p.metadata.name, podTerminated('Succeeded', 0));
    const done = await until('Succeeded', 'three', (s) => (s.status?.phase === 'Succeeded' ? s : undefined));
    expect(done.status).toMatchObject({
      agents: { total: 10, completed: 10, failed: 0 },
      deliveryRate: 100,
      completedAgents: '0-9',
      failedIndexes: '',
      results: { stored: 10 },
    });
    expect(done.status?.shards?.map((e) => [e.indexes, e.phase, e.agents, e.completedAgents])).toEqual([
      ['0-2', 'Succeeded', { total: 3, completed: 3, failed: 0 }, '0-2'],
      ['3-5', 'Succeeded', { total: 3, completed: 3, failed: 0 }, '3-5'],
      ['6-9', 'Succeeded', { total: 4, completed: 4, failed: 0 }, '6-9'],
    ]);
    expect(done.status?.conditions?.find((x) => x.type === 'Complete')).toMatchObject({
      status: 'True',
      message: '10/10 agents completed, 0 failed: delivery 100% >= 100%',
    });
    // One record per agent, global indexes, each stored by its own shard's pod.
    const { results, unreadable } = await new DirectorySource(work, { namespace: ns, name: 'three', uid: done.metadata.uid }).read();
    expect(unreadable).toEqual([]);
    expect(results.map((r) => [r.index, r.pod])).toEqual(Array.from({ length: 10 }, (_, i) => [i, `three-v2-1-s${i < 3 ? 0 : i < 6 ? 1 : 2}`]));
    // Each coordinator published through its own field manager.
    const managers = ((done.metadata as { managedFields?: Array<{ manager: string; subresource?: string }> }).managedFields ?? [])
      .filter((m) => m.subresource === 'status')
      .map((m) => m.manager);
    expect(managers).toEqual(expect.arrayContaining(['swarm-operator', 'cfn-coordinator-s0', 'cfn-coordinator-s1', 'cfn-coordinator-s2']));
    expect(managers).not.toContain('cfn-coordinator');
  });

  // NEEDS the engines to honour ObjectiveSpec.indexRange (branch engine): an
  // engine that ignores it runs every agent in every shard (each shard still
  // stores and counts its own range only).
  it('each agent runs once, in its own shard (V2 and V1)', async () => {
    for (const version of ['v2', 'v1'] as const) {
      const name = `once-${version}`;
      const marker = join(work, `${name}.log`);
      await c.create(
        swarmPath(ns),
        swarmManifest(ns, name, { agents: 5, shards: 2, coordination: { version }, agent: { command: ['sh', '-c', `echo "$AGENT_INDEX" >> ${marker}`] } }),
      );
      const pods = await waitFor('2 pods', async () => {
        const p = await podsOf(name);
        return p.length === 2 ? p : undefined;
      });
      for (const p of pods) await setPodStatus(c, ns, p.metadata.name, podRunning(true));
      const runs = await Promise.all(pods.map((p) => runShardPod(p)));
      expect(await Promise.all(runs.map((r) => r.done))).toEqual([0, 0]);
      expect(
        readFileSync(marker, 'utf8')
          .trim()
          .split('\n')
          .map(Number)
          .sort((a, b) => a - b),
      ).toEqual([0, 1, 2, 3, 4]);
    }
  });
});

describe('failures stay with their shard', () => {
  it("a shard whose V2 fails falls back alone; the swarm's fallback and event name it", async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'fb', { agents: 6, shards: 3, coordination: { version: 'v2' } }));
    const pods = await waitFor('3 pods', async () => {
      const p = await podsOf('fb');
      return p.length === 3 ? p : undefined;
    });
    const uids = new Map(pods.map((p) => [p.metadata.name, p.metadata.uid]));
    await setPodStatus(c, ns, 'fb-v2-1-s0', podRunning(true));
    await setPodStatus(c, ns, 'fb-v2-1-s2', podRunning(true));
    await setPodStatus(c, ns, 'fb-v2-1-s1', podTerminated('Failed', 3, 'V2 preflight: /dev/shm is not a tmpfs'));
    const v1 = await waitFor('shard 1 V1 pod', () => podNamed('fb-v1-2-s1'));
    expect(v1.metadata.labels).toMatchObject({ 'swarm.cfn.dev/shard': '1', 'swarm.cfn.dev/version': 'v1' });
    const s = await until('fallback recorded', 'fb', (x) => (x.status?.fallback ? x : undefined));
    expect(s.status?.fallback).toMatchObject({ from: 'v2', to: 'v1', reason: 'shard 1: V2 preflight: /dev/shm is not a tmpfs' });
    const byIndex = (i: number) => s.status?.shards?.find((e) => e.index === i);
    expect(byIndex(1)).toMatchObject({ version: 'v1', attempts: 2, pod: 'fb-v1-2-s1', fallback: { reason: 'V2 preflight: /dev/shm is not a tmpfs' } });
    expect(byIndex(0)).toMatchObject({ version: 'v2', attempts: 1, pod: 'fb-v2-1-s0' });
    expect(byIndex(2)).toMatchObject({ version: 'v2', attempts: 1, pod: 'fb-v2-1-s2' });
    expect(byIndex(0)?.fallback).toBeUndefined();
    // The other shards' pods are the same pods.
    for (const name of ['fb-v2-1-s0', 'fb-v2-1-s2']) expect((await podNamed(name))?.metadata.uid).toBe(uids.get(name));
    expect(await waitFor('event', async () => (await events(c, ns)).find((e) => e.involvedObject.name === 'fb' && e.reason === 'FallbackToV1'))).toMatchObject({
      message: 'shard 1: V2 unavailable (V2 preflight: /dev/shm is not a tmpfs), using V1 fallback',
    });
  });

  it('a shard whose pod is deleted is replaced alone and resumes past the agents it delivered', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'lost', { agents: 6, shards: 3, coordination: { version: 'v1' } }));
    const pods = await waitFor('3 pods', async () => {
      const p = await podsOf('lost');
      return p.length === 3 ? p : undefined;
    });
    for (const p of pods) await setPodStatus(c, ns, p.metadata.name, podRunning(true));
    await until('Running', 'lost', (s) => (s.status?.shards?.every((e) => e.phase === 'Running') ? true : undefined));
    // Shard 2's coordinator (indexes 4-5) delivered agent 4, into its own entry.
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'lost', total: 2, intervalMs: 10, shard: { index: 2, indexes: '4-5' } });
    pub.onResponse(agentResponse(4));
    await pub.flush();
    pub.stop();
    await until('progress summed', 'lost', (s) => (s.status?.completedAgents === '4' && s.status.agents?.completed === 1 ? true : undefined));
    const uids = new Map(pods.map((p) => [p.metadata.name, p.metadata.uid]));
    await c.delete(`/api/v1/namespaces/${ns}/pods/lost-v1-1-s2`, { gracePeriodSeconds: 0 });
    const replacement = await waitFor('replacement', () => podNamed('lost-v1-2-s2'));
    expect(replacement.spec.containers[0]!.env).toContainEqual({ name: 'CFN_COMPLETED_AGENTS', value: '4' });
    expect(replacement.spec.containers[0]!.env).toContainEqual({ name: 'CFN_SHARD', value: '2' });
    for (const name of ['lost-v1-1-s0', 'lost-v1-1-s1']) expect((await podNamed(name))?.metadata.uid).toBe(uids.get(name));
    const s = await swarmOf('lost');
    expect(s.status?.shards?.find((e) => e.index === 2)).toMatchObject({ attempts: 2, pod: 'lost-v1-2-s2' });
    expect(s.status?.shards?.filter((e) => e.index !== 2).map((e) => e.attempts)).toEqual([1, 1]);
    expect(
      await waitFor('event', async () => (await events(c, ns)).find((e) => e.involvedObject.name === 'lost' && e.reason === 'CoordinatorLost')),
    ).toMatchObject({
      message: expect.stringMatching(
        /^shard 2: coordinator pod lost-v1-1-s2 is gone; starting a replacement that resumes past the agents whose final answer is in$/,
      ),
    });
    // The replacement, run for real, runs its shard's other agent and keeps agent 4 as delivered.
    await setPodStatus(c, ns, replacement.metadata.name, podRunning(true));
    expect(await (await runShardPod(replacement)).done).toBe(0);
    const after = await until('shard 2 delivered', 'lost', (x) => (x.status?.shards?.find((e) => e.index === 2)?.completedAgents === '4-5' ? x : undefined));
    expect(after.status?.shards?.find((e) => e.index === 2)?.agents).toEqual({ total: 2, completed: 2, failed: 0 });
  });
});

describe('placement', () => {
  it("a shard the scheduler cannot place says why in its entry and in the swarm's condition; the others run", async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'tight', { agents: 6, shards: 3, coordination: { version: 'v2' } }));
    await waitFor('3 pods', async () => ((await podsOf('tight')).length === 3 ? true : undefined));
    await setPodStatus(c, ns, 'tight-v2-1-s0', podRunning(true));
    await setPodStatus(c, ns, 'tight-v2-1-s1', podRunning(true));
    const why = '0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.';
    await setPodStatus(c, ns, 'tight-v2-1-s2', {
      phase: 'Pending',
      conditions: [
        { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: why, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
      ],
    });
    const s = await until('shard 2 Unschedulable', 'tight', (x) =>
      x.status?.shards?.find((e) => e.index === 2)?.reason === 'Unschedulable' && x.status.phase === 'Running' ? x : undefined,
    );
    expect(s.status?.shards?.find((e) => e.index === 2)).toMatchObject({ phase: 'Pending', message: `coordinator pod tight-v2-1-s2: ${why}` });
    expect(s.status?.conditions?.find((x) => x.type === 'CoordinatorReady')).toMatchObject({
      status: 'False',
      reason: 'Unschedulable',
      message: `2/3 shards running; shard 2 Pending: coordinator pod tight-v2-1-s2: ${why}`,
    });
    expect(
      await waitFor('event', async () => (await events(c, ns)).find((e) => e.involvedObject.name === 'tight' && e.reason === 'Unschedulable')),
    ).toMatchObject({ message: `shard 2: coordinator pod tight-v2-1-s2: ${why}` });
  });
});

describe('spec.suspend', () => {
  it('creates nothing while true; false starts the shards; true again stops their pods; false resumes with new attempts', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'queued', { agents: 4, shards: 2, suspend: true, coordination: { version: 'v2' } }));
    const held = await until('Suspended', 'queued', (s) => (s.status?.conditions?.find((x) => x.type === 'Suspended')?.status === 'True' ? s : undefined));
    expect(held.status?.phase).toBe('Pending');
    expect(held.status?.version).toBeUndefined();
    expect(held.status?.shards?.map((e) => [e.indexes, e.reason])).toEqual([
      ['0-1', 'Suspended'],
      ['2-3', 'Suspended'],
    ]);
    expect(await podsOf('queued')).toEqual([]);
    const claims = (await c.get<{ items: Array<{ metadata: { name: string } }> }>(`/api/v1/namespaces/${ns}/persistentvolumeclaims`)).items.filter((x) =>
      x.metadata.name.startsWith('queued-'),
    );
    expect(claims).toEqual([]);

    await c.mergePatch(swarmPath(ns, 'queued'), { spec: { suspend: false } });
    const pods = await waitFor('2 pods', async () => {
      const p = await podsOf('queued');
      return p.length === 2 ? p : undefined;
    });
    const running = await until('version decided', 'queued', (s) => (s.status?.version ? s : undefined));
    expect(running.status?.conditions?.find((x) => x.type === 'Suspended')).toMatchObject({ status: 'False', reason: 'Resumed' });
    for (const p of pods) await setPodStatus(c, ns, p.metadata.name, podRunning(true));
    await until('Running', 'queued', (s) => (s.status?.phase === 'Running' ? true : undefined));

    await c.mergePatch(swarmPath(ns, 'queued'), { spec: { suspend: true } });
    // Pods on no node go at once; on a node the kubelet stops them within their grace period.
    await waitFor('pods stopped', async () => ((await podsOf('queued')).length === 0 ? true : undefined));
    const suspended = await until('Suspended again', 'queued', (s) =>
      s.status?.conditions?.find((x) => x.type === 'Suspended')?.status === 'True' && s.status.shards?.every((e) => e.reason === 'Suspended') ? s : undefined,
    );
    expect(suspended.status?.phase).toBe('Pending');

    await c.mergePatch(swarmPath(ns, 'queued'), { spec: { suspend: false } });
    const resumed = await waitFor('new attempts', async () => {
      const p = (await podsOf('queued')).map((x) => x.metadata.name).sort();
      return p.length === 2 ? p : undefined;
    });
    expect(resumed).toEqual(['queued-v2-2-s0', 'queued-v2-2-s1']);
    expect((await events(c, ns)).filter((e) => e.involvedObject.name === 'queued' && e.reason === 'CoordinatorResumed')).toHaveLength(2);
  });
});
