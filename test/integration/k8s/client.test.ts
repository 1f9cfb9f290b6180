// KubeClient's transport on a real API server: HTTP/2 (the API server offers
// it, undici's dispatcher negotiates it), every request of a client on one
// connection, and no stream left running after answers, error answers, an
// aborted watch and a watch the server ended. (That error bodies are read is
// tested over HTTP/1.1 in test/unit/k8s/client.test.ts: a small HTTP/2
// answer frees its stream unread.)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import diagnostics from 'node:diagnostics_channel';
import type { TLSSocket } from 'node:tls';
import type { Dispatcher } from 'undici';
import { client, createNamespace, deleteNamespace, waitFor } from '../operator/harness.js';
import type { KubeClient } from '../../../operator/k8s/client.js';
import { isNotFound } from '../../../operator/k8s/errors.js';

interface PoolStats {
  connected: number;
  running: number;
  pending: number;
}

/** The client's connection pool stats for its API server (undici Agent.stats, by origin). */
function poolStats(c: KubeClient): PoolStats | undefined {
  const dispatcher = (c as unknown as { auth?: { dispatcher: Dispatcher } }).auth?.dispatcher;
  const stats = (dispatcher as unknown as { stats?: Record<string, PoolStats> } | undefined)?.stats;
  return stats ? Object.values(stats)[0] : undefined;
}

const admin = client();
let ns: string;
beforeAll(async () => {
  ns = await createNamespace(admin, 'client');
});
afterAll(() => deleteNamespace(admin, ns));

describe('KubeClient on a real API server', () => {
  it('speaks HTTP/2 over one connection and releases every stream: answers, errors, watches', async () => {
    const protocols: string[] = [];
    const onConnected = (message: unknown) => {
      const socket = (message as { socket?: Partial<TLSSocket> }).socket;
      protocols.push(String(socket?.alpnProtocol));
    };
    diagnostics.subscribe('undici:client:connected', onConnected);
    try {
      const c = client();
      const cms = `/api/v1/namespaces/${ns}/configmaps`;
      await c.create(cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' }, data: { v: '1' } });
      // Concurrent answers and errors: over HTTP/1.1 these would take one connection each.
      const results = await Promise.allSettled([
        ...Array.from({ length: 30 }, () => c.get(`${cms}/a`)),
        ...Array.from({ length: 20 }, (_, i) => c.get(`${cms}/missing-${i}`)),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(30);
      expect(results.filter((r) => r.status === 'rejected' && isNotFound(r.reason))).toHaveLength(20);

      // A watch the caller aborts, and one the server ends (timeoutSeconds).
      const events: string[] = [];
      const aborted = c.watch(cms, { resourceVersion: '0' }, (e) => events.push(e.type));
      await waitFor('the watch event', () => (events.length > 0 ? true : undefined));
      aborted.abort();
      await expect(aborted.done).resolves.toBeUndefined();
      const ended = c.watch(cms, { timeoutSeconds: 1 }, () => undefined);
      await expect(ended.done).resolves.toBeUndefined();

      await waitFor('no stream left running', () => {
        const s = poolStats(c);
        return s && s.running === 0 && s.pending === 0 ? s : undefined;
      });
      expect(poolStats(c)?.connected).toBe(1);
      // At least this client's connection; any other seen meanwhile is HTTP/2 as well.
      expect(protocols.length).toBeGreaterThanOrEqual(1);
      expect(new Set(protocols)).toEqual(new Set(['h2']));
    } finally {
      diagnostics.unsubscribe('undici:client:connected', onConnected);
    }
  });
});
