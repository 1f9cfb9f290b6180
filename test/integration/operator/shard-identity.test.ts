// The admission policy for sharded swarms on a real API server: a shard's
// coordinator pod (`<swarm>-<version>-<n>-s<i>`), with the bound token the
// kubelet would mount, may publish only its own shard's progress (the
// coordinator fields of status.shards entry i): not another shard's entry,
// not the operator's fields of its own, not a field outside status.shards.
// A single-shard coordinator keeps its whole-status rule. No operator runs:
// the test writes the operator's side of the status itself.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../../../operator/k8s/client.js';
import { SHARED_COORDINATOR, sharedCoordinatorRbac } from '../../../operator/swarm/coordinator-rbac.js';
import {
  client,
  createNamespace,
  deleteNamespace,
  getSwarm,
  installCoordinatorPolicy,
  installCrds,
  podPath,
  swarmManifest,
  swarmPath,
  tokenKubeconfig,
  waitFor,
} from './harness.js';

const c = client();
let ns: string;
const work = mkdtempSync(join(tmpdir(), 'cfn-shard-identity-'));

const OPERATOR = 'integration-operator';
const shardEntry = (index: number, indexes: string) => ({
  index,
  indexes,
  pod: `shd-v2-1-s${index}`,
  node: `node-${index}`,
  version: 'v2',
  phase: 'Running',
  attempts: 1,
});

/** A pod of the shared ServiceAccount (never scheduled: there is no node) and a client holding a token bound to it. */
async function podClient(name: string): Promise<KubeClient> {
  const pod = await c.create<{ metadata: { name: string; uid: string } }>(podPath(ns), {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { serviceAccountName: SHARED_COORDINATOR, automountServiceAccountToken: false, containers: [{ name: 'c', image: 'none' }] },
  });
  return KubeClient.load(await tokenKubeconfig(c, ns, SHARED_COORDINATOR, work, { name: pod.metadata.name, uid: pod.metadata.uid }));
}

/** The field manager of the writes that are denied: a partial apply under it removes nothing another write set. */
const PROBE = 'cfn-coordinator-probe';

/** What a shard's coordinator applies: its progress on its own entry (field manager cfn-coordinator-s<i>). */
const progress = (swarm: string, shards: object[], status: object = {}) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name: swarm },
  status: { ...status, shards },
});

let s1: KubeClient;
let single: KubeClient;

beforeAll(async () => {
  await installCrds(c);
  await installCoordinatorPolicy(c);
  ns = await createNamespace(c, 'shard-identity');
  const rbac = sharedCoordinatorRbac(ns);
  await c.create(`/api/v1/namespaces/${ns}/serviceaccounts`, rbac.serviceAccount);
  await c.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, rbac.role);
  await c.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, rbac.roleBinding);
  await c.create(swarmPath(ns), swarmManifest(ns, 'shd', { agents: 9, shards: 3 }));
  await c.create(swarmPath(ns), swarmManifest(ns, 'one', { agents: 3 }));
  // The operator's side: phase and the shards' entries.
  await c.apply(swarmPath(ns, 'shd'), progress('shd', [shardEntry(0, '0-2'), shardEntry(1, '3-5'), shardEntry(2, '6-8')], { phase: 'Running' }), {
    fieldManager: OPERATOR,
    subresource: 'status',
  });
  s1 = await podClient('shd-v2-1-s1');
  single = await podClient('one-v2-1');
  // The policy takes a moment to reach the API server's admission: wait for its first denial.
  await waitFor(
    'policy enforced',
    () =>
      s1.mergePatch(swarmPath(ns, 'one', 'status'), {}).then(
        () => undefined,
        (e: Error) => e.message,
      ),
    15_000,
    200,
  );
});

afterAll(async () => {
  await deleteNamespace(c, ns);
  rmSync(work, { recursive: true, force: true });
});

describe('a shard coordinator under the shared identity', () => {
  it("shard 1 publishes the progress of its own entry; the operator's fields and the other entries stay as they were", async () => {
    const mine = {
      index: 1,
      agents: { total: 3, completed: 2, failed: 0 },
      completedAgents: '3-4',
      progressPod: 'shd-v2-1-s1',
      results: { type: 'persistentVolumeClaim', location: 'pvc://shd-results-1/x/shd/u/', stored: 2, bytes: 40 },
    };
    await s1.apply(swarmPath(ns, 'shd'), progress('shd', [mine]), { fieldManager: 'cfn-coordinator-s1', subresource: 'status', force: true });
    const sw = await getSwarm(c, ns, 'shd');
    const shards = (sw.status as { shards: Array<Record<string, unknown>> }).shards;
    expect(shards.find((s) => s.index === 1)).toEqual({ ...shardEntry(1, '3-5'), ...mine });
    expect(shards.find((s) => s.index === 0)).toEqual(shardEntry(0, '0-2'));
    expect(shards.find((s) => s.index === 2)).toEqual(shardEntry(2, '6-8'));
    // And again (an update of its own progress), by a merge patch of the whole list as a coordinator might send it.
    const list = shards.map((s) => (s.index === 1 ? { ...s, agents: { total: 3, completed: 3, failed: 0 }, completedAgents: '3-5' } : s));
    await s1.mergePatch(swarmPath(ns, 'shd', 'status'), { status: { shards: list } });
    expect((await getSwarm(c, ns, 'shd')).status).toMatchObject({
      shards: expect.arrayContaining([expect.objectContaining({ index: 1, completedAgents: '3-5' })]),
    });
  });

  it("shard 1 writing shard 2's entry is denied, naming the entry", async () => {
    const write = s1.apply(swarmPath(ns, 'shd'), progress('shd', [{ index: 2, completedAgents: '6-8' }]), {
      fieldManager: PROBE,
      subresource: 'status',
      force: true,
    });
    await expect(write).rejects.toThrow(
      /pod shd-v2-1-s1 \(shard 1 of swarm shd\) may only change the progress of its own entry of status.shards \(index 1\), not the entries of shards 2/,
    );
  });

  it("shard 1 removing another shard's entry is denied", async () => {
    const sw = await getSwarm(c, ns, 'shd');
    const only = (sw.status as { shards: Array<{ index: number }> }).shards.filter((s) => s.index !== 0);
    await expect(s1.mergePatch(swarmPath(ns, 'shd', 'status'), { status: { shards: only } })).rejects.toThrow(/not the entries of shards 0/);
  });

  it('shard 1 writing a field outside status.shards is denied, naming the field', async () => {
    await expect(s1.mergePatch(swarmPath(ns, 'shd', 'status'), { status: { deliveryRate: 100 } })).rejects.toThrow(
      /may only change the progress of its own entry of status.shards \(index 1\), not status fields outside it: deliveryRate/,
    );
    await expect(
      s1.apply(swarmPath(ns, 'shd'), progress('shd', [{ index: 1, completedAgents: '3-5' }], { completedAgents: '3-5' }), {
        fieldManager: PROBE,
        subresource: 'status',
        force: true,
      }),
    ).rejects.toThrow(/not status fields outside it: completedAgents/);
  });

  it("shard 1 changing the operator's fields of its own entry is denied, naming them", async () => {
    await expect(
      s1.apply(swarmPath(ns, 'shd'), progress('shd', [{ index: 1, phase: 'Succeeded', node: 'elsewhere' }]), {
        fieldManager: PROBE,
        subresource: 'status',
        force: true,
      }),
    ).rejects.toThrow(/not the operator's fields of it: (node, phase|phase, node)/);
  });

  it('a shard pod of another swarm may write nothing here; a single-shard pod keeps its whole-status rule', async () => {
    const other = await podClient('other-v2-1-s1');
    await expect(other.mergePatch(swarmPath(ns, 'shd', 'status'), { status: { deliveryRate: 1 } })).rejects.toThrow(
      /may only update its own Swarm's status: pod other-v2-1-s1 may not UPDATE swarms\/status shd/,
    );
    await single.mergePatch(swarmPath(ns, 'one', 'status'), { status: { deliveryRate: 50, completedAgents: '0' } });
    expect((await getSwarm(c, ns, 'one')).status).toMatchObject({ deliveryRate: 50, completedAgents: '0' });
    await expect(single.mergePatch(swarmPath(ns, 'shd', 'status'), { status: { deliveryRate: 1 } })).rejects.toThrow(
      /pod one-v2-1 may not UPDATE swarms\/status shd/,
    );
  });

  it("the pod of a Swarm named like a shard of another (shd-s1) is not that shard: its name reads shd-s1's own", async () => {
    const namesake = await podClient('shd-s1-v2-1');
    await expect(
      namesake.apply(swarmPath(ns, 'shd'), progress('shd', [{ index: 1, agents: { total: 3, completed: 3, failed: 0 }, completedAgents: '3-5' }]), {
        fieldManager: 'cfn-coordinator-s1',
        subresource: 'status',
        force: true,
      }),
    ).rejects.toThrow(/pod shd-s1-v2-1 may not UPDATE swarms\/status shd/);
  });

  it('100 shards with full progress: the policy stays within the CEL cost budget', async () => {
    const ranges = Array.from({ length: 100 }, (_, i) => `${i * 100}-${i * 100 + 99}`);
    // Progress as fragmented as a long run leaves it: every other index (about 400 characters a shard).
    const scattered = (i: number) => Array.from({ length: 50 }, (_, k) => String(i * 100 + 2 * k)).join(',');
    await c.create(swarmPath(ns), swarmManifest(ns, 'big', { agents: 10_000, shards: 100 }));
    // One write for the test's speed (the real writers are the operator and 100 coordinators).
    const entries = ranges.map((indexes, i) => ({
      index: i,
      indexes,
      pod: `big-v2-1-s${i}`,
      version: 'v2',
      phase: 'Running',
      attempts: 1,
      node: `node-${i % 3}`,
      agents: { total: 100, completed: 50, failed: 10 },
      completedAgents: scattered(i),
      failedAgents: Array.from({ length: 10 }, (_, k) => ({ index: i * 100 + 2 * k + 1, reason: 'exit 3: '.padEnd(200, 'x') })),
    }));
    await c.apply(swarmPath(ns, 'big'), progress('big', entries, { phase: 'Running' }), { fieldManager: OPERATOR, subresource: 'status' });
    const s57 = await podClient('big-v2-1-s57');
    await s57.apply(swarmPath(ns, 'big'), progress('big', [{ index: 57, agents: { total: 100, completed: 90, failed: 10 }, completedAgents: '5700-5799' }]), {
      fieldManager: 'cfn-coordinator-s57',
      subresource: 'status',
      force: true,
    });
    const sw = await getSwarm(c, ns, 'big');
    const shards = (sw.status as { shards: Array<{ index: number; completedAgents?: string }> }).shards;
    expect(shards).toHaveLength(100);
    expect(shards.find((s) => s.index === 57)?.completedAgents).toBe('5700-5799');
    expect(shards.find((s) => s.index === 58)?.completedAgents).toBe(scattered(58));
    await expect(
      s57.apply(swarmPath(ns, 'big'), progress('big', [{ index: 99, completedAgents: '9900' }]), { fieldManager: PROBE, subresource: 'status', force: true }),
    ).rejects.toThrow(/not the entries of shards 99/);
  });
});
