// `helm install` / `helm upgrade` / `helm uninstall` of the chart on a real API
// server: the objects it creates, a switch to namespaced RBAC on upgrade, and
// the operator working under those Roles alone.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../../../operator/k8s/client.js';
import { isNotFound } from '../../../operator/k8s/errors.js';
import { startOperator } from '../../../operator/manager/operator-manager.js';
import { crdRules, operatorRules, ruleSet } from '../../../operator/rbac/operator-rbac.js';
import { ensureCrds } from '../../../operator/release/ensure-crds.js';
import { releaseVersion } from '../../../operator/util/release-version.js';
import { client, createNamespace, deleteNamespace, getSwarm, listPods, silentLogger, swarmManifest, swarmPath, waitFor } from '../operator/harness.js';
import { helm, helmInstall, tokenKubeconfig } from './chart-install.js';
import type { PolicyRule } from '../../../operator/rbac/operator-rbac.js';

const c = client();
const work = mkdtempSync(join(tmpdir(), 'pkg-helm-'));
const release = `inst-${Math.random().toString(36).slice(2, 7)}`;
const fullname = `${release}-swarm-operator`;
const rbac = '/apis/rbac.authorization.k8s.io/v1';
let releaseNs: string;
let watchNs: string;
let installed = false;

interface Deployment {
  spec: {
    replicas: number;
    template: {
      spec: {
        serviceAccountName: string;
        securityContext: Record<string, unknown>;
        containers: Array<{
          image: string;
          args: string[];
          env: Array<{ name: string; value?: string; valueFrom?: unknown }>;
          securityContext: Record<string, unknown>;
          livenessProbe: { httpGet: { path: string } };
          readinessProbe: { httpGet: { path: string } };
        }>;
      };
    };
  };
}

const exists = async (path: string): Promise<boolean> => {
  try {
    await c.get(path);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
};
const rulesOf = (rules: PolicyRule[]) => [...ruleSet(rules)].map(([k, v]) => `${k}:${[...v].sort().join(',')}`).sort();

beforeAll(async () => {
  releaseNs = await createNamespace(c, 'pkg-helm');
  watchNs = await createNamespace(c, 'pkg-helm-watch');
});

afterAll(async () => {
  try {
    if (installed) helm(['uninstall', release, '--namespace', releaseNs]);
  } finally {
    await deleteNamespace(c, watchNs);
    await deleteNamespace(c, releaseNs);
    rmSync(work, { recursive: true, force: true });
  }
});

describe('helm install', () => {
  it('creates the CRDs, the operator Deployment, its ServiceAccount, cluster RBAC and the metrics Service', async () => {
    const out = helmInstall(release, releaseNs, ['image.tag=0.1.0']);
    installed = true;
    // NOTES.txt tells the next commands.
    expect(out).toContain(`kubectl -n ${releaseNs} rollout status deployment/${fullname}`);
    expect(out).toContain('kubectl apply -n default -f config/samples/swarm-auto.yaml');
    expect(out).toContain('kubectl get swarms -n default -w');
    expect(await exists('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/swarms.swarm.cfn.dev')).toBe(true);
    expect(await exists('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/rolloutpolicies.swarm.cfn.dev')).toBe(true);
    const dep = await c.get<Deployment>(`/apis/apps/v1/namespaces/${releaseNs}/deployments/${fullname}`);
    const pod = dep.spec.template.spec;
    const container = pod.containers[0]!;
    expect(pod.serviceAccountName).toBe(fullname);
    expect(container.image).toBe('swarm-operator:0.1.0');
    expect(container.args).toEqual([
      'operator',
      '--workers=8',
      '--metrics-port=8080',
      '--default-version=v2',
      '--image-pull-policy=IfNotPresent',
      '--leader-elect',
      '--manage-crds',
    ]);
    expect(container.env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } });
    expect(container.env).toContainEqual({ name: 'COORDINATOR_IMAGE', value: 'swarm-operator:0.1.0' });
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(await exists(`/api/v1/namespaces/${releaseNs}/serviceaccounts/${fullname}`)).toBe(true);
    expect(await exists(`/api/v1/namespaces/${releaseNs}/services/${fullname}-metrics`)).toBe(true);
    const role = await c.get<{ rules: PolicyRule[] }>(`${rbac}/clusterroles/${fullname}`);
    expect(rulesOf(role.rules)).toEqual(rulesOf(operatorRules()));
    expect(await exists(`${rbac}/clusterrolebindings/${fullname}`)).toBe(true);
    const crdRole = await c.get<{ rules: PolicyRule[] }>(`${rbac}/clusterroles/${fullname}-crds`);
    expect(crdRole.rules).toEqual(crdRules());
    expect(await exists(`${rbac}/clusterrolebindings/${fullname}-crds`)).toBe(true);
    expect(await exists(`${rbac}/namespaces/${releaseNs}/roles/${fullname}-leader-election`)).toBe(true);
    expect(await exists(`${rbac}/namespaces/${releaseNs}/rolebindings/${fullname}-leader-election`)).toBe(true);
    // The controller-manager turns the Deployment into a pod (no kubelet runs it here).
    await waitFor('operator pod', async () => (await listPods(c, releaseNs)).find((p) => p.metadata.labels['app.kubernetes.io/instance'] === release));
  });

  it('helm upgrade to watchNamespaces swaps the ClusterRole for a Role in that namespace', async () => {
    helmInstall(release, releaseNs, ['image.tag=0.1.0', `watchNamespaces={${watchNs}}`, 'workers=8', 'replicaCount=0'], 'upgrade');
    const status = JSON.parse(helm(['status', release, '--namespace', releaseNs, '-o', 'json'])) as { version: number; info: { status: string } };
    expect(status).toMatchObject({ version: 2, info: { status: 'deployed' } });
    const dep = await c.get<Deployment>(`/apis/apps/v1/namespaces/${releaseNs}/deployments/${fullname}`);
    expect(dep.spec.replicas).toBe(0);
    expect(dep.spec.template.spec.containers[0]!.args).toEqual(expect.arrayContaining(['--workers=8', `--namespaces=${watchNs}`]));
    expect(await exists(`${rbac}/clusterroles/${fullname}`)).toBe(false);
    expect(await exists(`${rbac}/clusterrolebindings/${fullname}`)).toBe(false);
    // The CRDs' own ClusterRole stays: the operator upgrades them whatever it watches.
    expect(await exists(`${rbac}/clusterrolebindings/${fullname}-crds`)).toBe(true);
    const role = await c.get<{ rules: PolicyRule[] }>(`${rbac}/namespaces/${watchNs}/roles/${fullname}`);
    expect(rulesOf(role.rules)).toEqual(rulesOf(operatorRules()));
    expect(await exists(`${rbac}/namespaces/${watchNs}/rolebindings/${fullname}`)).toBe(true);
  });

  it('the operator reconciles in the watched namespace with those Roles alone', async () => {
    const sa = KubeClient.load(await tokenKubeconfig(c, releaseNs, fullname, work));
    // --manage-crds under the chart's RBAC: get and patch on its two CRDs suffice.
    const crds = await ensureCrds({ client: sa, logger: silentLogger, release: releaseVersion() });
    expect(crds.map((o) => o.action)).toEqual(['applied', 'applied']);
    const op = await startOperator({
      logger: silentLogger,
      client: sa,
      namespaces: [watchNs],
      image: 'swarm-operator:0.1.0',
      metricsPort: -1,
      leaderElection: { enabled: true, namespace: releaseNs, name: fullname, leaseDurationSeconds: 6, renewDeadlineSeconds: 4, retryPeriodSeconds: 0.2 },
    });
    try {
      await c.create(swarmPath(watchNs), swarmManifest(watchNs, 'scoped', { coordination: { version: 'v2' } }));
      const sw = await waitFor('status written', async () => {
        const s = await getSwarm(c, watchNs, 'scoped');
        return s.status?.coordinatorPod ? s : undefined;
      });
      expect(sw.status).toMatchObject({ version: 'v2', activeVersion: 'v2', coordinatorPod: 'scoped-v2-1' });
      // Intent first: the pod is created after the status write, so wait for it.
      await waitFor('coordinator pod created', async () => (await listPods(c, watchNs)).some((p) => p.metadata.name === 'scoped-v2-1') || undefined);
      await c.delete(swarmPath(watchNs, 'scoped'));
      await waitFor('finalized', async () => !(await exists(swarmPath(watchNs, 'scoped'))) || undefined);
    } finally {
      await op.stop();
    }
  });

  it('helm uninstall removes the release objects (and keeps the CRDs)', async () => {
    helm(['uninstall', release, '--namespace', releaseNs, '--wait']);
    installed = false;
    expect(await exists(`/apis/apps/v1/namespaces/${releaseNs}/deployments/${fullname}`)).toBe(false);
    expect(await exists(`${rbac}/namespaces/${watchNs}/roles/${fullname}`)).toBe(false);
    expect(await exists(`/api/v1/namespaces/${releaseNs}/serviceaccounts/${fullname}`)).toBe(false);
    expect(await exists('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/swarms.swarm.cfn.dev')).toBe(true);
  });
});
