// A CustomResourceDefinition can be created and its objects written and watched.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiextensionsV1Api, CustomObjectsApi, Watch } from '@kubernetes/client-node';
import { apiStatus, loadKubeConfig, suffix, waitFor } from './helpers.js';

const GROUP = 'it.swarm-operator.dev';
const VERSION = 'v1';

interface WatchEvent {
  phase: string;
  name: string;
  size: unknown;
}

describe('CRDs and custom objects', () => {
  const kc = loadKubeConfig();
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const objects = kc.makeApiClient(CustomObjectsApi);
  const sfx = suffix();
  const plural = `probes${sfx}`;
  const kind = `Probe${sfx}`;
  const crdName = `${plural}.${GROUP}`;
  const namespace = 'default';

  beforeAll(async () => {
    await ext.createCustomResourceDefinition({
      body: {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: crdName },
        spec: {
          group: GROUP,
          scope: 'Namespaced',
          names: { plural, singular: `probe${sfx}`, kind, listKind: `${kind}List` },
          versions: [
            {
              name: VERSION,
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: {
                      type: 'object',
                      properties: { size: { type: 'integer', minimum: 1 } },
                      required: ['size'],
                    },
                  },
                },
              },
            },
          ],
        },
      },
    });
    await waitFor('the CRD to be Established', async () => {
      const crd = await ext.readCustomResourceDefinition({ name: crdName });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    });
  }, 60_000);

  afterAll(async () => {
    await ext.deleteCustomResourceDefinition({ name: crdName }).catch(() => undefined);
  });

  const body = (name: string, size: number): object => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind,
    metadata: { name },
    spec: { size },
  });

  it('stores and reads back a custom object', async () => {
    await objects.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, body: body('stored', 3) });
    const got = (await objects.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name: 'stored' })) as {
      spec: { size: number };
      metadata: { uid: string };
    };
    expect(got.spec.size).toBe(3);
    expect(got.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
  }, 30_000);

  it('rejects an object that breaks the schema', async () => {
    const err = await objects.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, body: body('invalid', 0) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(apiStatus(err)).toBe(422);
  }, 30_000);

  it('streams ADDED, MODIFIED and DELETED events to a watch', async () => {
    const events: WatchEvent[] = [];
    let watchError: unknown;
    const watch = new Watch(kc);
    const controller = await watch.watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`,
      { fieldSelector: 'metadata.name=watched' },
      (phase: string, obj: { metadata?: { name?: string }; spec?: { size?: unknown } }) => {
        events.push({ phase, name: obj.metadata?.name ?? '', size: obj.spec?.size });
      },
      (err: unknown) => {
        watchError = err;
      },
    );
    try {
      await objects.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, body: body('watched', 1) });
      await objects.patchNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural,
        name: 'watched',
        body: [{ op: 'replace', path: '/spec/size', value: 2 }],
      });
      await objects.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name: 'watched' });
      await waitFor('the DELETED event', async () => (events.some((e) => e.phase === 'DELETED') ? true : undefined), 20_000);
      // Checked before abort(): aborting ends the watch with an AbortError.
      expect(watchError ?? null).toBeNull();
    } finally {
      controller.abort();
    }
    expect(events.map((e) => [e.phase, e.name, e.size])).toEqual([
      ['ADDED', 'watched', 1],
      ['MODIFIED', 'watched', 2],
      ['DELETED', 'watched', 2],
    ]);
  }, 60_000);
});
