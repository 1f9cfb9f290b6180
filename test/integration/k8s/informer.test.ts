// The informer against a real API server: events, a forced 410 Gone (a watch
// from a compacted resourceVersion) answered by a re-list, and a clean stop.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Informer } from '../../../operator/k8s/informer.js';
import { client, createNamespace, deleteNamespace, waitFor } from '../operator/harness.js';
import type { WatchHandle } from '../../../operator/k8s/client.js';

const c = client();
let ns: string;
beforeAll(async () => {
  ns = await createNamespace(c, 'informer');
});
afterAll(() => deleteNamespace(c, ns));

/** Compacts etcd to its current revision (local control plane: its ports file sits beside the kubeconfig). */
async function compactEtcd(): Promise<void> {
  const portsFile = join(dirname(process.env.KUBECONFIG ?? ''), 'ports');
  if (!existsSync(portsFile)) return;
  const etcd = Number(readFileSync(portsFile, 'utf8').trim().split(/\s+/)[1]);
  const post = async (path: string, body: object) =>
    (await fetch(`http://127.0.0.1:${etcd}${path}`, { method: 'POST', body: JSON.stringify(body) })).json() as Promise<{ header?: { revision?: string } }>;
  const head = await post('/v3/kv/range', { key: Buffer.from('/').toString('base64') });
  await post('/v3/kv/compaction', { revision: head.header?.revision, physical: true });
}

const cm = (name: string, v: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { test: 'informer' } }, data: { v } });

describe('Informer', () => {
  it('sees adds, updates and deletes, re-lists after 410 Gone, and stops cleanly', async () => {
    const seen: string[] = [];
    const inf = new Informer({
      client: c,
      path: `/api/v1/namespaces/${ns}/configmaps`,
      labelSelector: 'test=informer',
      onEvent: (t, o) => seen.push(`${t}:${o.metadata?.name}`),
    });
    await c.create(`/api/v1/namespaces/${ns}/configmaps`, cm('a', '1'));
    inf.start();
    await waitFor('initial list', () => (seen.includes('add:a') ? true : undefined));
    await c.create(`/api/v1/namespaces/${ns}/configmaps`, cm('b', '1'));
    await c.mergePatch(`/api/v1/namespaces/${ns}/configmaps/a`, { data: { v: '2' } });
    await c.delete(`/api/v1/namespaces/${ns}/configmaps/b`);
    await waitFor('watch events', () => (seen.includes('delete:b') ? true : undefined));
    expect(seen).toEqual(['add:a', 'add:b', 'update:a', 'delete:b']);
    expect(inf.relists).toBe(1);

    // Force a watch from a compacted resourceVersion: 410 Gone, answered by a
    // re-list. The local control plane serves configmaps without a watch cache
    // (--watch-cache-sizes configmaps#0), so the watch reaches etcd, which has
    // compacted that revision away: deterministic, whatever the server's age.
    await compactEtcd();
    const internals = inf as unknown as { resourceVersion: string; handle: WatchHandle };
    internals.resourceVersion = '2';
    internals.handle.abort();
    await waitFor('the re-list after 410 Gone', () => (inf.relists >= 2 ? true : undefined));
    await c.create(`/api/v1/namespaces/${ns}/configmaps`, cm('c', '1'));
    await waitFor('events after the re-watch', () => (seen.includes('add:c') ? true : undefined));
    expect(
      inf
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(['a', 'c']);
    await inf.stop();
  });
});
