// kube-controller-manager runs: dependents of a deleted owner are garbage
// collected, namespaces get a default service account and are fully deleted.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import { apiStatus, loadKubeConfig, suffix, waitFor } from './helpers.js';

describe('controllers', () => {
  const kc = loadKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `swarm-it-gc-${suffix()}`;

  beforeAll(async () => {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });

  afterAll(async () => {
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it('creates the default service account in a new namespace', async () => {
    const sa = await waitFor('the default service account', async () => core.readNamespacedServiceAccount({ name: 'default', namespace }));
    expect(sa.metadata?.namespace).toBe(namespace);
  }, 60_000);

  it('garbage-collects an object whose owner is deleted', async () => {
    const owner = await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'owner' }, data: { role: 'owner' } },
    });
    const uid = owner.metadata?.uid;
    if (!uid) throw new Error('owner has no uid');
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: 'dependent',
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid }],
        },
        data: { role: 'dependent' },
      },
    });
    // A bystander without an owner must survive the collection.
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'bystander' } } });

    await core.deleteNamespacedConfigMap({ name: 'owner', namespace, propagationPolicy: 'Background' });
    await waitFor(
      'the dependent to be collected',
      async () => {
        const status = await core.readNamespacedConfigMap({ name: 'dependent', namespace }).then(
          () => 200,
          (e: unknown) => apiStatus(e),
        );
        return status === 404 ? true : undefined;
      },
      60_000,
    );
    const left = await core.listNamespacedConfigMap({ namespace });
    // kube-root-ca.crt is published into every namespace by another controller.
    const names = left.items.map((c) => c.metadata?.name).filter((n) => n !== 'kube-root-ca.crt');
    expect(names).toEqual(['bystander']);
  }, 90_000);

  it('finishes deleting a namespace and its contents', async () => {
    const ns = `swarm-it-nsdel-${suffix()}`;
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'inside' } } });
    await core.deleteNamespace({ name: ns });
    await waitFor(
      'the namespace to disappear',
      async () => {
        const status = await core.readNamespace({ name: ns }).then(
          () => 200,
          (e: unknown) => apiStatus(e),
        );
        return status === 404 ? true : undefined;
      },
      60_000,
    );
  }, 90_000);
});
