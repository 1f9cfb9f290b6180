// Why the chart grants `update` on swarms/finalizers, a verb the operator never
// sends: a second kube-apiserver on the same etcd with the
// OwnerReferencesPermissionEnforcement admission plugin (on by default in
// OpenShift) refuses a blockOwnerDeletion ownerReference to a Swarm from whoever
// cannot update its finalizers; with the chart's rules the operator still works.
// Needs a control plane made by test/cluster/cluster.sh (its pki and ports).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { KubeClient } from '../../../operator/k8s/client.js';
import { startOperator } from '../../../operator/manager/operator-manager.js';
import { ADMISSION_RULES } from '../../../operator/rbac/operator-rbac.js';
import { client, createNamespace, deleteNamespace, getSwarm, installCrds, silentLogger, swarmManifest, swarmPath, waitFor } from '../operator/harness.js';
import { REPO } from '../../unit/packaging/tools.js';
import { helm, helmInstall, tokenKubeconfig } from './chart-install.js';
import type { ChildProcess } from 'node:child_process';
import type { PolicyRule } from '../../../operator/rbac/operator-rbac.js';

const c = client();
const work = mkdtempSync(join(tmpdir(), 'pkg-ownerref-'));
const release = `own-${Math.random().toString(36).slice(2, 7)}`;
const fullname = `${release}-swarm-operator`;
const rbac = '/apis/rbac.authorization.k8s.io/v1';
let apiserver: ChildProcess | undefined;
let strict: KubeClient; // admin, through the apiserver with the plugin
let strictServer: string;
let releaseNs: string;
let ns: string;
let installed = false;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });

/** A kubeconfig like `file` but for `server`. */
function repoint(file: string, server: string): string {
  const out = join(work, `${Math.random().toString(36).slice(2)}.kubeconfig`);
  const current = KubeClient.load(file).config.getCurrentCluster()!.server;
  writeFileSync(out, readFileSync(file, 'utf8').split(current).join(server));
  return out;
}

beforeAll(async () => {
  const dir = dirname(process.env.KUBECONFIG ?? '');
  const pki = join(dir, 'pki');
  for (const f of ['ports', 'pki/apiserver.crt', 'pki/ca.crt', 'pki/sa.pub', 'pki/sa.key']) {
    if (!existsSync(join(dir, f))) throw new Error(`${join(dir, f)} is missing: this test needs a control plane made by test/cluster/cluster.sh`);
  }
  const [apiPort, etcdPort] = readFileSync(join(dir, 'ports'), 'utf8').trim().split(/\s+/);
  const bin = execFileSync('bash', ['-c', `source "${REPO}/test/cluster/lib.sh" && bin_path kube-apiserver`], { encoding: 'utf8' }).trim();
  const port = await freePort();
  apiserver = spawn(
    bin,
    [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      `--cert-dir=${join(work, 'certs')}`,
      `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
      `--client-ca-file=${join(pki, 'ca.crt')}`,
      `--secure-port=${port}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      '--service-cluster-ip-range=10.0.0.0/24',
      '--authorization-mode=RBAC',
      // Tokens of the main API server stay valid here: same issuer and keys.
      `--service-account-issuer=https://127.0.0.1:${apiPort}`,
      `--service-account-key-file=${join(pki, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      '--enable-admission-plugins=OwnerReferencesPermissionEnforcement',
      '--profiling=false',
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  strictServer = `https://127.0.0.1:${port}`;
  strict = KubeClient.load(repoint(process.env.KUBECONFIG!, strictServer));
  await waitFor('the second API server', () => strict.get('/api'), 60_000, 250);
  await installCrds(c);
  releaseNs = await createNamespace(c, 'pkg-own-rel');
  ns = await createNamespace(c, 'pkg-own');
});

afterAll(async () => {
  try {
    if (installed) helm(['uninstall', release, '--namespace', releaseNs]);
    await deleteNamespace(c, ns);
    await deleteNamespace(c, releaseNs);
  } finally {
    if (apiserver && apiserver.exitCode === null) {
      const exited = new Promise((resolve) => apiserver!.once('exit', resolve));
      apiserver.kill('SIGTERM');
      await exited;
    }
    rmSync(work, { recursive: true, force: true });
  }
});

describe('OwnerReferencesPermissionEnforcement', () => {
  it('refuses a blockOwnerDeletion reference to a Swarm without update on swarms/finalizers', async () => {
    const sw = await c.create<{ metadata: { uid: string } }>(swarmPath(ns), swarmManifest(ns, 'owner'));
    await c.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'probe' } });
    const grant = (rules: PolicyRule[]) =>
      c.apply(
        `${rbac}/namespaces/${ns}/roles/probe`,
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'probe', namespace: ns }, rules },
        { fieldManager: 'test', force: true },
      );
    await grant([{ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['create', 'get'] }]);
    await c.create(`${rbac}/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'probe' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'probe' },
      subjects: [{ kind: 'ServiceAccount', name: 'probe', namespace: ns }],
    });
    const probe = KubeClient.load(repoint(await tokenKubeconfig(c, ns, 'probe', work), strictServer));
    const owned = (name: string) => ({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: {
        name,
        ownerReferences: [
          { apiVersion: 'swarm.cfn.dev/v1alpha1', kind: 'Swarm', name: 'owner', uid: sw.metadata.uid, controller: true, blockOwnerDeletion: true },
        ],
      },
    });
    // Polled: wait until create is in effect, then the refusal is admission's.
    const refusal = await waitFor('the admission refusal', async () => {
      try {
        await probe.create(`/api/v1/namespaces/${ns}/serviceaccounts`, owned('refused'));
        return 'allowed';
      } catch (e) {
        return /blockOwnerDeletion/.test(String(e)) ? String(e) : undefined;
      }
    });
    expect(refusal).toContain("cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on");
    await grant([{ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['create', 'get'] }, ...ADMISSION_RULES]);
    await waitFor('allowed with update on swarms/finalizers', () => probe.create(`/api/v1/namespaces/${ns}/serviceaccounts`, owned('allowed')));
  });

  it('the operator under the chart rules still creates coordinators there', async () => {
    helmInstall(release, releaseNs, ['replicaCount=0', `watchNamespaces={${ns}}`]);
    installed = true;
    const sa = KubeClient.load(repoint(await tokenKubeconfig(c, releaseNs, fullname, work), strictServer));
    const op = await startOperator({
      logger: silentLogger,
      client: sa,
      namespaces: [ns],
      image: 'swarm-operator:0.1.0',
      metricsPort: -1,
      leaderElection: { enabled: false, namespace: releaseNs },
    });
    try {
      await strict.create(swarmPath(ns), swarmManifest(ns, 'strict', { coordination: { version: 'v2' } }));
      const sw = await waitFor('coordinator created', async () => {
        const s = await getSwarm(strict, ns, 'strict');
        return s.status?.coordinatorPod ? s : undefined;
      });
      expect(sw.status).toMatchObject({ activeVersion: 'v2', coordinatorPod: 'strict-v2-1' });
      // The pod follows the status write (intent first).
      await waitFor('coordinator pod', () => strict.get(`/api/v1/namespaces/${ns}/pods/strict-v2-1`));
    } finally {
      await op.stop();
    }
  });
});
