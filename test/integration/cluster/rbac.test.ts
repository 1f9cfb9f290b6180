// RBAC denies a user without bindings, both by impersonation and with a real
// client certificate issued through the CertificateSigningRequest API (signed
// by kube-controller-manager), and allows it once a RoleBinding grants access.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AuthenticationV1Api, CertificatesV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { User } from '@kubernetes/client-node';
import { apiStatus, loadKubeConfig, run, suffix, waitFor } from './helpers.js';

/** A copy of kc whose current context uses `user` instead. */
function withUser(kc: KubeConfig, user: User): KubeConfig {
  const ctx = kc.getContextObject(kc.getCurrentContext());
  if (!ctx) throw new Error('kubeconfig has no current context');
  const out = new KubeConfig();
  out.loadFromOptions({
    clusters: kc.clusters,
    users: [user],
    contexts: [{ ...ctx, user: user.name }],
    currentContext: ctx.name,
  });
  return out;
}

async function statusOf(p: Promise<unknown>): Promise<number | undefined> {
  return p.then(
    () => 200,
    (e: unknown) => apiStatus(e),
  );
}

describe('RBAC', () => {
  const admin = loadKubeConfig();
  const adminUser = admin.getCurrentUser();
  const sfx = suffix();
  const nobody = `swarm-nobody-${sfx}`;
  const csrName = `swarm-it-${sfx}`;
  const namespace = 'default';
  let workDir = '';

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'swarm-rbac-'));
  });

  afterAll(async () => {
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.deleteNamespacedRoleBinding({ name: csrName, namespace }).catch(() => undefined);
    await rbac.deleteNamespacedRole({ name: csrName, namespace }).catch(() => undefined);
    await admin
      .makeApiClient(CertificatesV1Api)
      .deleteCertificateSigningRequest({ name: csrName })
      .catch(() => undefined);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('lets the admin (system:masters) list namespaces', async () => {
    const list = await admin.makeApiClient(CoreV1Api).listNamespace();
    expect(list.items.map((n) => n.metadata?.name)).toEqual(expect.arrayContaining(['default', 'kube-system']));
  });

  it('denies an impersonated user with no bindings', async () => {
    if (!adminUser) throw new Error('kubeconfig has no current user');
    const kc = withUser(admin, { ...adminUser, name: 'impersonating', impersonateUser: nobody });
    expect(await statusOf(kc.makeApiClient(CoreV1Api).listNamespace())).toBe(403);
    expect(await statusOf(kc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace }))).toBe(403);
  });

  it('authenticates a client certificate for a user with no bindings, denies it, then allows what a RoleBinding grants', async () => {
    const key = path.join(workDir, 'user.key');
    const csrFile = path.join(workDir, 'user.csr');
    for (const args of [
      ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key],
      ['req', '-new', '-key', key, '-subj', `/CN=${nobody}`, '-out', csrFile],
    ]) {
      const r = await run('openssl', args);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    const certs = admin.makeApiClient(CertificatesV1Api);
    await certs.createCertificateSigningRequest({
      body: {
        metadata: { name: csrName },
        spec: {
          request: (await readFile(csrFile)).toString('base64'),
          signerName: 'kubernetes.io/kube-apiserver-client',
          usages: ['client auth'],
          expirationSeconds: 600,
        },
      },
    });
    const pending = await certs.readCertificateSigningRequest({ name: csrName });
    await certs.replaceCertificateSigningRequestApproval({
      name: csrName,
      body: {
        ...pending,
        status: {
          conditions: [{ type: 'Approved', status: 'True', reason: 'IntegrationTest', message: 'approved by rbac.test.ts' }],
        },
      },
    });
    // kube-controller-manager's csrsigning controller issues the certificate.
    const certData = await waitFor('the signed certificate', async () => {
      const csr = await certs.readCertificateSigningRequest({ name: csrName });
      return csr.status?.certificate || undefined;
    });
    const kc = withUser(admin, {
      name: nobody,
      certData,
      keyData: (await readFile(key)).toString('base64'),
    });

    const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    expect(review.status?.userInfo?.username).toBe(nobody);
    expect(review.status?.userInfo?.groups).not.toContain('system:masters');

    const core = kc.makeApiClient(CoreV1Api);
    expect(await statusOf(core.listNamespace())).toBe(403);
    expect(await statusOf(core.listNamespacedConfigMap({ namespace }))).toBe(403);

    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: csrName },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: csrName },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: csrName },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: nobody }],
      },
    });
    await waitFor('the RoleBinding to take effect', async () => ((await statusOf(core.listNamespacedConfigMap({ namespace }))) === 200 ? true : undefined));
    // Only what the Role names: secrets and cluster-wide lists stay denied.
    expect(await statusOf(core.listNamespacedSecret({ namespace }))).toBe(403);
    expect(await statusOf(core.listNamespace())).toBe(403);
  }, 60_000);
});
