// The results claim on a real API server (with kube-controller-manager: its
// garbage collector and PV controller): created by server-side apply before
// the first coordinator pod, mounted by every pod (V2, V1 fallback), removed
// with the Swarm unless retained; an unschedulable pod is explained by the
// claim's own words.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isNotFound } from '../../../operator/k8s/errors.js';
import {
  client,
  createNamespace,
  deleteNamespace,
  getSwarm,
  installCrds,
  listPods,
  podTerminated,
  runOperator,
  setPodStatus,
  swarmManifest,
  swarmPath,
  waitFor,
} from './harness.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';
import type { PodObject } from './harness.js';

const c = client();
let ns: string;
let op: RunningOperator;

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'results-claim');
  op = await runOperator({ namespaces: [ns] });
});

afterAll(async () => {
  await op?.stop();
  await deleteNamespace(c, ns);
});

interface Claim {
  metadata: {
    name: string;
    ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }>;
    managedFields?: Array<{ manager: string; operation: string }>;
  };
  spec: { accessModes: string[]; resources: { requests: { storage: string } }; storageClassName?: string };
}
const claimPath = (name: string) => `/api/v1/namespaces/${ns}/persistentvolumeclaims/${name}`;
const claim = async (name: string): Promise<Claim | undefined> => {
  try {
    return await c.get<Claim>(claimPath(name));
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
};
const podOf = async (name: string, attempt = 1): Promise<PodObject | undefined> =>
  (await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === name && p.metadata.labels['swarm.cfn.dev/attempt'] === String(attempt));
const resultsVolumeOf = (pod: PodObject) =>
  (pod.spec.volumes as Array<{ name: string; persistentVolumeClaim?: { claimName: string } }>).find((v) => v.name === 'results');

describe('the results claim on a real API server', () => {
  it('created by apply before the first pod, owned by the Swarm; the V2 pod and its V1 fallback mount it; gone with the Swarm', async () => {
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, 'owned', { agents: 2, coordination: { version: 'v2' }, results: { size: '2Gi', storageClassName: 'standard' } }),
    );
    const v2 = await waitFor('v2 pod', () => podOf('owned'));
    const sw = await getSwarm(c, ns, 'owned');
    const created = await claim('owned-results');
    expect(created).toMatchObject({ spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '2Gi' } }, storageClassName: 'standard' } });
    expect(created?.metadata.ownerReferences).toEqual([
      { apiVersion: 'swarm.cfn.dev/v1alpha1', kind: 'Swarm', name: 'owned', uid: sw.metadata.uid, controller: true, blockOwnerDeletion: true },
    ]);
    expect(created?.metadata.managedFields?.find((f) => f.manager === 'swarm-operator')?.operation).toBe('Apply');
    expect(resultsVolumeOf(v2)).toEqual({ name: 'results', persistentVolumeClaim: { claimName: 'owned-results' } });

    await setPodStatus(c, ns, v2.metadata.name, podTerminated('Failed', 3, 'preflight failed'));
    const v1 = await waitFor('v1 pod', () => podOf('owned', 2));
    expect(v1.metadata.labels['swarm.cfn.dev/version']).toBe('v1');
    expect(resultsVolumeOf(v1)).toEqual({ name: 'results', persistentVolumeClaim: { claimName: 'owned-results' } });

    await c.delete(swarmPath(ns, 'owned'));
    await waitFor('claim collected with its Swarm', async () => ((await claim('owned-results')) ? undefined : true), 30_000, 200);
  });

  it('retain: no owner, the claim stays after its Swarm is gone; a new Swarm of the name uses it as it is', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'kept', { agents: 1, coordination: { version: 'v1' }, results: { retain: true } }));
    await waitFor('v1 pod', () => podOf('kept'));
    expect((await claim('kept-results'))?.metadata.ownerReferences).toBeUndefined();
    await c.delete(swarmPath(ns, 'kept'));
    await waitFor('swarm gone', async () => ((await getSwarm(c, ns, 'kept').catch(() => undefined)) ? undefined : true), 30_000, 200);
    await waitFor('its pods gone', async () => ((await podOf('kept')) ? undefined : true), 30_000, 200);
    expect(await claim('kept-results')).toBeDefined();

    await c.create(swarmPath(ns), swarmManifest(ns, 'kept', { agents: 1, coordination: { version: 'v1' } }));
    const pod = await waitFor("the new swarm's pod", () => podOf('kept'));
    expect(resultsVolumeOf(pod)).toEqual({ name: 'results', persistentVolumeClaim: { claimName: 'kept-results' } });
    // Not adopted: it outlives this Swarm too.
    expect((await claim('kept-results'))?.metadata.ownerReferences).toBeUndefined();
  });

  it("an unschedulable coordinator: CoordinatorReady says why its claim does not bind, in the claim's words", async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'nobind', { agents: 1, coordination: { version: 'v1' } }));
    const pod = await waitFor('v1 pod', () => podOf('nobind'));
    await setPodStatus(c, ns, pod.metadata.name, {
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: '0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.',
        },
      ],
    });
    // No default StorageClass here: the PV controller says so on the claim.
    const cond = await waitFor(
      "CoordinatorReady with the claim's words",
      async () =>
        (await getSwarm(c, ns, 'nobind')).status?.conditions?.find(
          (x) => x.type === 'CoordinatorReady' && x.message.includes('results claim nobind-results is Pending: '),
        ),
      30_000,
      200,
    );
    expect(cond).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    expect(cond.message).toBe(
      `coordinator pod ${pod.metadata.name}: 0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.; results claim nobind-results is Pending: FailedBinding: no persistent volumes available for this claim and no storage class is set`,
    );
    expect((await getSwarm(c, ns, 'nobind')).status?.phase).toBe('Pending');
  });
});
