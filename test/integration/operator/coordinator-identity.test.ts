// The shared coordinator identity (--coordinator-identity shared) on a real
// API server with the admission policy the chart installs: no RBAC objects
// per Swarm, one ServiceAccount per namespace, and a pod's bound token (the
// one the kubelet mounts) can update only its own Swarm's status. The test
// plays the kubelet: it asks for the pod-bound token and runs the pod's
// command as a local process.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../../../operator/k8s/client.js';
import { SHARED_COORDINATOR } from '../../../operator/swarm/coordinator-rbac.js';
import {
  client,
  createNamespace,
  tokenKubeconfig,
  deleteNamespace,
  startAgentLauncher,
  getSwarm,
  installCoordinatorPolicy,
  installCrds,
  listPods,
  podRunning,
  podTerminated,
  REPO,
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
const work = mkdtempSync(join(tmpdir(), 'cfn-identity-'));
const shm = `/dev/shm/cfn-it-identity-${process.pid}`;

beforeAll(async () => {
  await installCrds(c);
  await installCoordinatorPolicy(c);
  ns = await createNamespace(c, 'identity');
  op = await runOperator({ namespaces: [ns], coordinatorIdentity: 'shared' });
});
afterAll(async () => {
  await op?.stop();
  await deleteNamespace(c, ns);
  rmSync(work, { recursive: true, force: true });
  rmSync(shm, { recursive: true, force: true });
});

const podOf = async (name: string, attempt = 1) =>
  (await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === name && p.metadata.labels['swarm.cfn.dev/attempt'] === String(attempt));

/** A client holding a token of the shared ServiceAccount, bound to `pod` like the kubelet's (or to no pod). */
async function tokenClient(pod?: PodObject): Promise<{ client: KubeClient; kubeconfig: string }> {
  const kubeconfig = await tokenKubeconfig(c, ns, SHARED_COORDINATOR, work, pod ? { name: pod.metadata.name, uid: pod.metadata.uid } : undefined);
  return { client: KubeClient.load(kubeconfig), kubeconfig };
}

describe('shared coordinator identity', () => {
  let a: PodObject;
  let b: PodObject;

  it("gives every coordinator pod the namespace's one ServiceAccount and creates no RBAC objects per Swarm", async () => {
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, 'alpha', { agents: 30, coordination: { version: 'v2', fallbackTimeoutSeconds: 600 }, agent: { command: ['cat'] } }),
    );
    await c.create(swarmPath(ns), swarmManifest(ns, 'alpha-v2', { coordination: { version: 'v1' } }));
    a = await waitFor('alpha pod', () => podOf('alpha'));
    b = await waitFor('alpha-v2 pod', () => podOf('alpha-v2'));
    expect(a.spec.serviceAccountName).toBe(SHARED_COORDINATOR);
    expect(b.spec.serviceAccountName).toBe(SHARED_COORDINATOR);
    const names = async (plural: string, group = 'rbac.authorization.k8s.io/v1') =>
      (
        await c.get<{ items: Array<{ metadata: { name: string; ownerReferences?: unknown[] } }> }>(
          `/${group === '' ? 'api/v1' : `apis/${group}`}/namespaces/${ns}/${plural}`,
        )
      ).items;
    const sas = await names('serviceaccounts', '');
    expect(sas.map((s) => s.metadata.name).sort()).toEqual(['default', SHARED_COORDINATOR].sort());
    const roles = await names('roles');
    expect(roles.map((r) => r.metadata.name)).toEqual([SHARED_COORDINATOR]);
    expect(roles[0]!.metadata.ownerReferences).toBeUndefined();
    expect((await names('rolebindings')).map((r) => r.metadata.name)).toEqual([SHARED_COORDINATOR]);
  });

  it("a pod's bound token updates its own Swarm's status and nothing else", async () => {
    const { client: sa } = await tokenClient(a);
    // The policy takes a moment to reach the API server's admission: wait for its first denial.
    await waitFor(
      'policy enforced',
      () =>
        sa.mergePatch(swarmPath(ns, 'alpha-v2', 'status'), {}).then(
          () => undefined,
          (e: Error) => e.message,
        ),
      15_000,
      200,
    );
    const before = await getSwarm(c, ns, 'alpha');
    const read = await sa.mergePatch<{ metadata: { resourceVersion: string }; spec: { agents: number } }>(swarmPath(ns, 'alpha', 'status'), {});
    // The read through an empty patch writes nothing.
    expect(read.metadata.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(read.spec.agents).toBe(30);
    await expect(sa.mergePatch(swarmPath(ns, 'alpha-v2', 'status'), { status: { deliveryRate: 1 } })).rejects.toThrow(
      /may only update its own Swarm's status: pod alpha-v2-1 may not UPDATE swarms\/status alpha-v2/,
    );
    // RBAC: no reads, no spec, no deletes, no pods.
    await expect(sa.get(swarmPath(ns, 'alpha'))).rejects.toThrow(/forbidden/);
    await expect(sa.mergePatch(swarmPath(ns, 'alpha'), { spec: { ttlSecondsAfterFinished: 1 } })).rejects.toThrow(/forbidden/);
    await expect(sa.delete(swarmPath(ns, 'alpha'))).rejects.toThrow(/forbidden/);
    await expect(sa.get(`/api/v1/namespaces/${ns}/pods`)).rejects.toThrow(/forbidden/);
  });

  it('a token of the shared ServiceAccount bound to no pod may write no Swarm', async () => {
    const { client: sa } = await tokenClient();
    await expect(sa.mergePatch(swarmPath(ns, 'alpha', 'status'), {})).rejects.toThrow(/the token names no pod/);
  });

  it('`cfn coordinate` runs a real V2 swarm under the shared identity and publishes its status', async () => {
    await setPodStatus(c, ns, a.metadata.name, podRunning(true));
    const container = a.spec.containers[0]!;
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: work, LOG_LEVEL: 'warn' };
    for (const e of container.env) if (e.value !== undefined) env[e.name] = e.value;
    const launcher = startAgentLauncher(work, a.metadata.name);
    Object.assign(env, {
      CFN_LAUNCHER_DIR: launcher.channel,
      KUBECONFIG: (await tokenClient(a)).kubeconfig,
      CFN_SHM_PATH: shm,
      CFN_RESULTS_DIR: work,
      CFN_MEMORY_DB: join(work, 'alpha.sqlite'),
      CFN_TERMINATION_LOG: join(work, 'alpha.termination'),
    });
    const child = spawn(process.execPath, [join(REPO, 'bin/cfn.js'), ...container.args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    launcher.stop();
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    await setPodStatus(c, ns, a.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Succeeded', async () => {
      const s = await getSwarm(c, ns, 'alpha');
      return s.status?.phase === 'Succeeded' ? s : undefined;
    });
    expect(sw.status).toMatchObject({ agents: { total: 30, completed: 30, failed: 0 }, deliveryRate: 100, completedAgents: '0-29', version: 'v2' });
  });

  it('a deleted shared ServiceAccount is made again for the next coordinator pod', async () => {
    await c.delete(`/api/v1/namespaces/${ns}/serviceaccounts/${SHARED_COORDINATOR}`);
    await waitFor('gone', () =>
      c.get(`/api/v1/namespaces/${ns}/serviceaccounts/${SHARED_COORDINATOR}`).then(
        () => undefined,
        () => true,
      ),
    );
    await c.create(swarmPath(ns), swarmManifest(ns, 'after-delete', { coordination: { version: 'v1' } }));
    const pod = await waitFor('pod after the ServiceAccount was deleted', () => podOf('after-delete'), 30_000);
    expect(pod.spec.serviceAccountName).toBe(SHARED_COORDINATOR);
    await expect(c.get(`/api/v1/namespaces/${ns}/serviceaccounts/${SHARED_COORDINATOR}`)).resolves.toBeDefined();
  });
});
