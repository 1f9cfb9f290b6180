// The informer against a real API server: events, a forced 410 Gone (a watch
// from a compacted resourceVersion) answered by a re-list, and a clean stop.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Informer } from '../../../operator/k8s/informer.js';
import { client, createNamespace, deleteNamespace, waitFor } from '../operator/harness.js';
import type { WatchHandle } from '../../../operator/k8s/client.js';

const c = client();
let ns: string;
beforeAll(async () => {
  ns = await createNamespace(c, 'informer');
});
afterAll(() => deleteNamespace(c, ns));

const cm = (name: string, v: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { test: 'informer' } }, data: { v } });

describe('Informer', () => {
  it('sees adds, updates and deletes, re-lists after 410 Gone, and stops cleanly', async () => {
    const seen: string[] = [];
    const inf = new Informer({ client: c, path: `/api/v1/namespaces/${ns}/configmaps`, labelSelector: 'test=informer', onEvent: (t, o) => seen.push(`${t}:${o.metadata?.name}`) });
    await c.create(`/api/v1/namespaces/${ns}/configmaps`, cm('a', '1'));
    inf.start();
    await waitFor('initial list', () => (seen.includes('add:a') ? true : undefined));
    await c.create(`/api/v1/namespaces/${ns}/configmaps`, cm('b', '1'));
    await c.mergePatch(`/api/v1/namespaces/${ns}/configmaps/a`, { data: { v: '2' } });
    await c.delete(`/api/v1/namespaces/${ns}/configmaps/b`);
    await waitFor('watch events', () => (seen.includes('delete:b') ? true : undefined));
    expect(seen).toEqual(['add:a', 'add:b', 'update:a', 'delete:b']);
    expect(inf.relists).toBe(1);

    // Force a watch from a resourceVersion long compacted away: the server answers 410.
    const internals = inf as unknown as { resourceVersion: string; handle: WatchHandle };
    internals.resourceVersion = '1';
    internals.handle.abort();
    await waitFor('re-list after 410', () => (inf.relists === 2 ? true : undefined), 20_000);
    await c.create(`/api/v1/namespaces/${ns}/configmaps`, cm('c', '1'));
    await waitFor('events after the re-list', () => (seen.includes('add:c') ? true : undefined));
    expect(inf.list().map((o) => o.metadata?.name).sort()).toEqual(['a', 'c']);
    await inf.stop();
  });
});
