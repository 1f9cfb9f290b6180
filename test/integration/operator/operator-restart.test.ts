import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { client, createNamespace, deleteNamespace, getSwarm, installCrds, listPods, runOperator, swarmManifest, swarmPath, waitFor } from './harness.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';

const c = client();
let ns: string;
const running: RunningOperator[] = [];

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'swarm-restart');
});
afterAll(async () => {
  await Promise.all(running.map((o) => o.stop()));
  await deleteNamespace(c, ns);
});

async function start(overrides: Parameters<typeof runOperator>[0] = {}): Promise<RunningOperator> {
  const op = await runOperator({ namespaces: [ns], ...overrides });
  running.push(op);
  return op;
}

describe('operator restarts and leader election', () => {
  it('a restarted operator neither duplicates pods nor flips versions', async () => {
    const first = await start({ defaultVersion: 'v2' });
    for (let i = 0; i < 5; i++) await c.create(swarmPath(ns), swarmManifest(ns, `r${i}`));
    await waitFor('5 pods', async () => ((await listPods(c, ns)).length === 5 ? true : undefined));
    const before = await Promise.all([0, 1, 2, 3, 4].map((i) => getSwarm(c, ns, `r${i}`)));
    await waitFor('versions decided', async () => (await Promise.all([0, 1, 2, 3, 4].map((i) => getSwarm(c, ns, `r${i}`)))).every((s) => s.status?.version));
    await first.stop();

    // A new process with a different default: existing swarms keep their decision.
    const second = await start({ defaultVersion: 'v1' });
    await second.controller.idle();
    await new Promise((r) => setTimeout(r, 500));
    await second.controller.idle();
    const pods = await listPods(c, ns);
    expect(pods.map((p) => p.metadata.name).sort()).toEqual(['r0-v2-1', 'r1-v2-1', 'r2-v2-1', 'r3-v2-1', 'r4-v2-1']);
    for (let i = 0; i < 5; i++) {
      const s = await getSwarm(c, ns, `r${i}`);
      expect(s.status).toMatchObject({ version: 'v2', versionReason: 'operator default v2 (no RolloutPolicy)', coordinatorAttempts: 1 });
      expect(s.metadata.uid).toBe(before[i]!.metadata.uid);
    }
    // New swarms get the new default.
    await c.create(swarmPath(ns), swarmManifest(ns, 'after'));
    const after = await waitFor('decided', async () => (await getSwarm(c, ns, 'after')).status?.version);
    expect(after).toBe('v1');
    await second.stop();
  });

  it('two operator processes: exactly one leader acts, the other takes over when it stops', async () => {
    const election = { enabled: true, namespace: ns, name: 'swarm-operator-test', leaseDurationSeconds: 6, renewDeadlineSeconds: 4, retryPeriodSeconds: 0.2 };
    const a = await start({ leaderElection: { ...election, identity: 'op-a' } });
    const b = await start({ leaderElection: { ...election, identity: 'op-b' } });
    await waitFor('a leader', () => a.isLeader() || b.isLeader() || undefined, 10_000);
    await new Promise((r) => setTimeout(r, 2500));
    expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1);
    const leader = a.isLeader() ? a : b;
    const standby = leader === a ? b : a;

    await c.create(swarmPath(ns), swarmManifest(ns, 'led'));
    await waitFor('led pod', async () => (await listPods(c, ns)).some((p) => p.metadata.name.startsWith('led-')) || undefined);
    // Every reconcile counted, whatever its result (the series exist at 0 from the start).
    const reconciles = async (op: typeof a) =>
      (await op.metrics.registry.getSingleMetric('controller_runtime_reconcile_total')!.get()).values.reduce((n, v) => n + v.value, 0);
    expect(await reconciles(standby)).toBe(0);

    const lease = await c.get<{ spec: { holderIdentity: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/swarm-operator-test`);
    expect(lease.spec.holderIdentity).toBe(leader === a ? 'op-a' : 'op-b');

    await leader.stop();
    await waitFor('standby takes over', () => standby.isLeader() || undefined, 10_000);
    await c.create(swarmPath(ns), swarmManifest(ns, 'led2'));
    await waitFor('led2 pod', async () => (await listPods(c, ns)).some((p) => p.metadata.name.startsWith('led2-')) || undefined);
  });
});
