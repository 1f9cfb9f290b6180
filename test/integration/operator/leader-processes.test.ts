// Two real `cfn operator` processes against one API server: exactly one leads
// and acts; when it is stopped (SIGTERM releases the lease) the other takes over.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { client, createNamespace, deleteNamespace, installCrds, listPods, operatorProcess, swarmManifest, swarmPath, waitFor } from './harness.js';
import type { ChildProcess } from 'node:child_process';

const c = client();
let ns: string;
const procs: ChildProcess[] = [];

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'leaders');
});
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  await deleteNamespace(c, ns);
});

function startOperatorProcess(port: number): ChildProcess {
  const p = operatorProcess(ns, port);
  procs.push(p);
  return p;
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}
const isLeader = async (port: number) => /leader_election_master_status\{name="swarm-operator"\} 1/.test(await scrape(port).catch(() => ''));
const reconciles = async (port: number) =>
  (await scrape(port))
    .split('\n')
    .filter((l) => l.startsWith('controller_runtime_reconcile_total{controller="swarm"'))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);

describe('leader election across processes', () => {
  it('exactly one of two operator processes acts; the other takes over on SIGTERM', async () => {
    const ports = [19300 + (process.pid % 300), 19700 + (process.pid % 300)];
    const [a, b] = ports.map(startOperatorProcess);
    const leaderPort = await waitFor(
      'a leader',
      async () => {
        for (const p of ports) if (await isLeader(p)) return p;
        return undefined;
      },
      30_000,
      200,
    );
    const standbyPort = ports.find((p) => p !== leaderPort)!;
    await new Promise((r) => setTimeout(r, 2000));
    expect(await isLeader(standbyPort)).toBe(false);

    await c.create(swarmPath(ns), swarmManifest(ns, 'one'));
    await waitFor('pod of one', async () => (await listPods(c, ns)).some((p) => p.metadata.name === 'one-v1-1') || undefined, 30_000);
    // The pod is created inside the reconcile; the counter moves when that reconcile returns.
    await waitFor('the leader counts its reconcile', async () => ((await reconciles(leaderPort)) > 0 ? true : undefined), 30_000, 100);
    expect(await reconciles(standbyPort)).toBe(0);

    const leader = leaderPort === ports[0] ? a! : b!;
    leader.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => leader.on('close', r));
    expect(code).toBe(0);
    await waitFor('standby leads', () => isLeader(standbyPort).then((v) => v || undefined), 30_000, 200);
    await c.create(swarmPath(ns), swarmManifest(ns, 'two'));
    await waitFor('pod of two', async () => (await listPods(c, ns)).some((p) => p.metadata.name === 'two-v1-1') || undefined, 30_000);
    // Nothing duplicated by the hand-over.
    const names = (await listPods(c, ns)).map((p) => p.metadata.name).sort();
    expect(names).toEqual(['one-v1-1', 'two-v1-1']);
  });
});
