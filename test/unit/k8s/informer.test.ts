// The informer against an in-memory API server over HTTP (memory-api-server.ts;
// test/integration/k8s runs it against a real one): list then watch from the
// list's resourceVersion, adds, updates and deletes in order and once each; a
// watch the server ends is re-opened from the last resourceVersion (no replay);
// 410 Gone re-lists and the re-list reconciles the cache (deletes it missed);
// other failures back off exponentially and recover; upsert never steps the
// cache back; stop() ends the watch and every request.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Informer } from '../../../operator/k8s/informer.js';
import type { InformerEvent } from '../../../operator/k8s/informer.js';
import type { KubeObject } from '../../../operator/k8s/client.js';
import { MemoryApiServer, until } from './memory-api-server.js';

const server = new MemoryApiServer();
const informers: Informer[] = [];
let seq = 0;
beforeAll(() => server.start());
afterEach(async () => {
  for (const i of informers.splice(0)) await i.stop();
});
afterAll(() => server.stop());

/** A fresh collection per test: the server keeps history across tests. */
const collection = () => `/apis/swarm.cfn.dev/v1alpha1/namespaces/ns${++seq}/swarms`;
const swarm = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name, namespace: 'ns' },
  ...extra,
});

function informerOn(path: string, opts: { minBackoffMs?: number; maxBackoffMs?: number } = {}) {
  const events: string[] = [];
  const errors: Array<{ err: string; retryInMs: number }> = [];
  let synced = 0;
  const inf = new Informer({
    client: server.client(),
    path,
    onEvent: (type: InformerEvent, obj: KubeObject) => events.push(`${type} ${obj.metadata?.name ?? ''}`),
    onError: (err, retryInMs) => errors.push({ err: String(err), retryInMs }),
    onSynced: () => synced++,
    ...opts,
  });
  informers.push(inf);
  inf.start();
  return { inf, events, errors, synced: () => synced };
}

describe('Informer', () => {
  it('lists what exists (add each, synced), then watches adds, updates and deletes, once each and in order', async () => {
    const path = collection();
    server.put(path, swarm('a'));
    server.put(path, swarm('b'));
    const { inf, events, synced } = informerOn(path);
    await until('synced and watching', () => synced() === 1 && server.watching(path) > 0);
    expect(events).toEqual(['add a', 'add b']);
    server.put(path, swarm('c'));
    server.put(path, swarm('a', { spec: { agents: 2 } }));
    server.remove(path, 'b');
    await until('three watch events', () => events.length === 5);
    expect(events).toEqual(['add a', 'add b', 'add c', 'update a', 'delete b']);
    expect(
      inf
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(['a', 'c']);
    expect(inf.get('ns/a')).toMatchObject({ spec: { agents: 2 } });
    expect(inf.get('ns/b')).toBeUndefined();
  });

  it('re-opens a watch the server ended from the last resourceVersion: nothing replayed, nothing missed, no re-list', async () => {
    const path = collection();
    server.put(path, swarm('a'));
    const { inf, events } = informerOn(path);
    await until('watching', () => server.watching(path) > 0);
    server.put(path, swarm('b'));
    await until('add b', () => events.includes('add b'));
    server.endWatches();
    // Written while no watch is open: the next one starts from b's resourceVersion and carries it.
    server.put(path, swarm('c'));
    await until('add c', () => events.includes('add c'));
    expect(events).toEqual(['add a', 'add b', 'add c']);
    expect(inf.watchesStarted).toBe(2);
    expect(inf.relists).toBe(1);
  });

  it('410 Gone re-lists, and the re-list delivers the delete the watch never carried', async () => {
    const path = collection();
    server.put(path, swarm('a'));
    server.put(path, swarm('b'));
    const { inf, events, synced } = informerOn(path);
    await until('watching', () => server.watching(path) > 0);
    server.removeUnseen(path, 'a');
    server.put(path, swarm('b', { spec: { agents: 3 } }));
    await until('update b', () => events.includes('update b'));
    server.errorWatches(410, 'Expired');
    await until('re-listed', () => synced() === 2);
    expect(inf.relists).toBe(2);
    expect(events).toEqual(['add a', 'add b', 'update b', 'delete a']);
    expect(inf.list().map((o) => o.metadata?.name)).toEqual(['b']);
  });

  it('backs off exponentially after failures (list and watch), reports each with its delay, and recovers', async () => {
    const path = collection();
    server.put(path, swarm('a'));
    server.failNext({ method: 'GET', path, status: 500, reason: 'InternalError' });
    server.failNext({ method: 'GET', path, watch: true, status: 503, reason: 'ServiceUnavailable' });
    server.failNext({ method: 'GET', path, watch: true, status: 500, reason: 'InternalError' });
    const { events, errors } = informerOn(path, { minBackoffMs: 20, maxBackoffMs: 50 });
    await until('watching', () => server.watching(path) > 0 && events.length === 1);
    expect(errors.map((e) => e.retryInMs)).toEqual([20, 40, 50]);
    expect(errors.map((e) => e.err)).toEqual([
      expect.stringContaining('InternalError'),
      expect.stringContaining('ServiceUnavailable'),
      expect.stringContaining('InternalError'),
    ]);
    server.put(path, swarm('b'));
    await until('add b', () => events.includes('add b'));
    expect(events).toEqual(['add a', 'add b']);
  });

  it('upsert keeps the newer copy: its own write wins over an older event, an older upsert is ignored; managedFields are dropped', async () => {
    const path = collection();
    const a = server.put(path, swarm('a', { spec: { v: 1 } }));
    const { inf, events } = informerOn(path);
    await until('listed and watching', () => inf.get('ns/a') !== undefined && server.watching(path) > 0);
    const mine = { ...a, metadata: { ...a.metadata, resourceVersion: '999999', managedFields: [{ manager: 'x' }] }, spec: { v: 'mine' } };
    inf.upsert(mine);
    expect(inf.get('ns/a')).toMatchObject({ spec: { v: 'mine' } });
    expect(inf.get('ns/a')!.metadata).not.toHaveProperty('managedFields');
    inf.upsert({ ...a, spec: { v: 'older' } });
    expect(inf.get('ns/a')).toMatchObject({ spec: { v: 'mine' } });
    // An event older than the cached copy does not replace it.
    server.put(path, swarm('a', { spec: { v: 2 } }));
    // Events arrive in order on one stream: once z is in, a's event was handled.
    server.put(path, swarm('z'));
    await until('add z', () => events.includes('add z'));
    expect(events).toEqual(['add a', 'add z']);
    expect(inf.get('ns/a')).toMatchObject({ spec: { v: 'mine' } });
  });

  it('stop() ends the watch and makes no request after it', async () => {
    const path = collection();
    const client = server.client();
    let requests = 0;
    client.onRequest = () => requests++;
    const inf = new Informer({ client, path, onEvent: () => undefined });
    inf.start();
    await until('watching', () => server.watching(path) > 0 && requests === 2);
    await inf.stop();
    await until('watch closed', () => server.watching(path) === 0);
    const after = requests;
    await new Promise((r) => setTimeout(r, 200));
    expect(requests).toBe(after);
  });
});
