// Losing the Lease ends the operator's work for good, and a fresh operator
// leads and reconciles: once when another holder writes the Lease under a
// running `cfn operator` process (it exits 4, as its Deployment would see),
// once when the API server is out of reach past the renew deadline (an
// in-process operator behind a loopback proxy that the test cuts). Throughout,
// /readyz and leader_election_master_status are sampled: neither may say
// "leading" once the operator stopped reconciling.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { KubeClient } from '../../../operator/k8s/client.js';
import {
  client,
  createNamespace,
  deleteNamespace,
  installCrds,
  listPods,
  operatorProcess,
  runOperator,
  sample,
  swarmManifest,
  swarmPath,
  waitFor,
} from './harness.js';
import type { ChildProcess } from 'node:child_process';
import type { Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';

const c = client();
let ns: string;
const procs: ChildProcess[] = [];
const ops: RunningOperator[] = [];
let work: string;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'leader-lost');
  work = mkdtempSync(join(tmpdir(), 'leader-lost-'));
});
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const op of ops) await op.stop();
  for (const cleanup of cleanups) await cleanup();
  await deleteNamespace(c, ns);
  rmSync(work, { recursive: true, force: true });
});

interface Sample {
  at: number;
  ready: boolean;
  leader: boolean;
}

/** Polls /readyz and the leader gauge every 50 ms until stopped; an unreachable server counts as neither. */
function sampler(port: number): { samples: Sample[]; stop: () => Promise<void> } {
  const samples: Sample[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const at = Date.now();
      // The leader metric first, readiness after: both only ever go from true to
      // false, so a sample that reads "not leader" then reads readiness as it is
      // since (read the other way round, a readiness from before the step-down
      // would land in the first "not leader" sample).
      const text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => r.text(),
        () => '',
      );
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      samples.push({ at, ready, leader: sample(text, 'leader_election_master_status', { name: 'swarm-operator' }) === 1 });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    samples,
    /** Stops after one more whole sample, so the last one sees the state as it is now. */
    stop: async () => {
      const n = samples.length + 1;
      while (samples.length <= n) await new Promise((r) => setTimeout(r, 20));
      on = false;
      await loop;
    },
  };
}

const leaderOf = async (port: number) => {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
    (r) => r.text(),
    () => '',
  );
  return sample(text, 'leader_election_master_status', { name: 'swarm-operator' }) === 1;
};
const reconcilesOf = (text: string) => sample(text, 'controller_runtime_reconcile_total', { controller: 'swarm', result: 'success' }) ?? 0;
const hasPod = async (name: string) => (await listPods(c, ns)).some((p) => p.metadata.name === name);
const leasePath = (name: string) => `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${name}`;
const microTime = (d: Date) => d.toISOString().replace(/Z$/, '000Z');

interface Lease {
  metadata: { resourceVersion?: string };
  spec: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number; acquireTime?: string; leaseTransitions?: number };
}

/** Another candidate wins the Lease: it writes itself as holder, as a successor's elector would. */
async function takeLease(name: string, holder: string, seconds: number): Promise<number> {
  const lease = await c.get<Lease & Record<string, unknown>>(leasePath(name));
  const now = new Date();
  lease.spec = {
    ...lease.spec,
    holderIdentity: holder,
    renewTime: microTime(now),
    acquireTime: microTime(now),
    leaseDurationSeconds: seconds,
    leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1,
  };
  await c.request({ method: 'PUT', path: leasePath(name), body: lease });
  return Date.now();
}

/** Every sample from the first that said "not leading" on says neither leader nor ready. */
function neverLeadsAgain(samples: Sample[]): Sample[] {
  const first = samples.findIndex((s) => !s.leader);
  return first < 0 ? [] : samples.slice(first).filter((s) => s.leader || s.ready);
}

function startProcess(port: number): ChildProcess {
  const p = operatorProcess(ns, port);
  procs.push(p);
  return p;
}

/** A loopback TCP proxy to the API server that the test can cut (every connection reset, new ones refused) and restore. */
async function apiProxy(target: URL): Promise<{ port: number; cut: () => Promise<void>; restore: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async () => {
    server = createServer((down) => {
      const up = createConnection({ host: target.hostname, port: Number(target.port) });
      for (const s of [down, up]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      down.pipe(up).pipe(down);
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  };
  await listen();
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    if (server?.listening) await new Promise((r) => server!.close(r));
  });
  return {
    port,
    cut: async () => {
      const closed = new Promise((r) => server!.close(r));
      for (const s of sockets) s.destroy();
      await closed;
    },
    restore: listen,
  };
}

describe('leadership lost', () => {
  it('a cfn operator process whose Lease another holder takes stops at once and exits 4; a fresh process leads and reconciles', async () => {
    const base = 20100 + (process.pid % 300);
    const [portA, portB] = [base, base + 400];
    const a = startProcess(portA);
    const exitA = new Promise<number | null>((r) => a.on('close', r));
    await waitFor('A leads', () => leaderOf(portA).then((v) => v || undefined), 30_000, 100);
    await c.create(swarmPath(ns), swarmManifest(ns, 'one'));
    await waitFor('pod of one', () => hasPod('one-v1-1') || undefined, 30_000);

    const watchA = sampler(portA);
    const takenAt = await takeLease('swarm-operator-leader', 'intruder', 8);
    const code = await exitA;
    await watchA.stop();
    expect(code).toBe(4);
    // A saw the new holder on its next renew (retry period 2 s) and stopped.
    const stoppedAt = watchA.samples.find((s) => !s.leader)?.at ?? Infinity;
    expect(stoppedAt - takenAt).toBeLessThan(5000);
    expect(neverLeadsAgain(watchA.samples)).toEqual([]);

    // While the intruder holds the Lease nobody reconciles: no pod for a new Swarm.
    await c.create(swarmPath(ns), swarmManifest(ns, 'two'));
    await new Promise((r) => setTimeout(r, 1500));
    expect(await hasPod('two-v1-1')).toBe(false);
    const b = startProcess(portB);
    const watchB = sampler(portB);
    await waitFor('B leads once the intruder lease expired', () => leaderOf(portB).then((v) => v || undefined), 30_000, 100);
    const ledAt = Date.now();
    expect(ledAt - takenAt).toBeGreaterThanOrEqual(8000 - 1000);
    await waitFor('pod of two, by B', () => hasPod('two-v1-1') || undefined, 30_000);
    await watchB.stop();
    // B was a ready standby, then a leader; it never said "leader" while the intruder held the Lease.
    expect(watchB.samples.filter((s) => s.leader && s.at < takenAt + 8000 - 1000)).toEqual([]);
    const text = await fetch(`http://127.0.0.1:${portB}/metrics`).then((r) => r.text());
    expect(reconcilesOf(text)).toBeGreaterThan(0);
    const names = (await listPods(c, ns)).map((p) => p.metadata.name).sort();
    expect(names).toEqual(['one-v1-1', 'two-v1-1']);
    b.kill('SIGTERM');
    expect(await new Promise<number | null>((r) => b.on('close', r))).toBe(0);
  });

  it('an operator cut off from the API server past its renew deadline stops for good; a fresh one leads and reconciles once the server is reachable', async () => {
    const kubeconfig = parse(readFileSync(process.env.KUBECONFIG!, 'utf8')) as { clusters: Array<{ cluster: { server: string } }> };
    const proxy = await apiProxy(new URL(kubeconfig.clusters[0]!.cluster.server));
    for (const cl of kubeconfig.clusters) cl.cluster.server = `https://127.0.0.1:${proxy.port}`;
    const file = join(work, 'kubeconfig-via-proxy');
    writeFileSync(file, stringify(kubeconfig));
    const election = { enabled: true, namespace: ns, name: 'cut-off', leaseDurationSeconds: 6, renewDeadlineSeconds: 4, retryPeriodSeconds: 0.5 };
    const first = await runOperator({
      client: KubeClient.load(file),
      namespaces: [ns],
      defaultVersion: 'v1',
      leaderElection: { ...election, identity: 'first' },
    });
    ops.push(first);
    await waitFor('first leads', () => first.isLeader() || undefined, 20_000);
    await c.create(swarmPath(ns), swarmManifest(ns, 'three'));
    await waitFor('pod of three', () => hasPod('three-v1-1') || undefined, 30_000);

    const watch = sampler(first.port!);
    const cutAt = Date.now();
    await proxy.cut();
    await first.lost;
    await proxy.restore();
    await new Promise((r) => setTimeout(r, 2000));
    await watch.stop();
    // Stepped down not before the renew deadline (4 s since the last renew), soon after it.
    const stoppedAt = watch.samples.find((s) => !s.leader)?.at ?? Infinity;
    expect(stoppedAt - cutAt).toBeGreaterThan(4000 - 600);
    expect(stoppedAt - cutAt).toBeLessThan(4000 + 2000);
    expect(first.isLeader()).toBe(false);
    expect(neverLeadsAgain(watch.samples)).toEqual([]);
    expect(watch.samples.at(-1)).toMatchObject({ ready: false, leader: false });
    expect((await fetch(`http://127.0.0.1:${first.port!}/healthz`)).status).toBe(503);

    // The stopped operator reconciles nothing, even with the API server back.
    await c.create(swarmPath(ns), swarmManifest(ns, 'four'));
    const second = await runOperator({
      client: KubeClient.load(file),
      namespaces: [ns],
      defaultVersion: 'v1',
      leaderElection: { ...election, identity: 'second' },
    });
    ops.push(second);
    await waitFor('second leads', () => second.isLeader() || undefined, 20_000);
    await waitFor('pod of four, by the fresh operator', () => hasPod('four-v1-1') || undefined, 30_000);
    const lease = await c.get<Lease>(leasePath('cut-off'));
    expect(lease.spec.holderIdentity).toBe('second');
    expect(first.isLeader()).toBe(false);
    expect(first.controller.queue.length).toBe(0);
  });
});
