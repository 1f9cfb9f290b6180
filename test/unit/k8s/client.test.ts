// KubeClient's transport against a local HTTP server: what it sends (path,
// query string, headers, body), how it types failures (API errors, network
// errors, timeouts, caller aborts), its hooks, the watch stream, and that
// every response body is read or released (an unread body keeps its
// connection, the next request opens another).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { ROLLOUT_POLICY_RESOURCE, SWARM_RESOURCE } from '../../../operator/api/common.js';
import { APPLY_PATCH, KubeClient, resourcePath } from '../../../operator/k8s/client.js';
import type { WatchEvent } from '../../../operator/k8s/client.js';
import { KubeApiError } from '../../../operator/k8s/errors.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let server: Server;
let handler: Handler;
let seen: Seen[];
let connections: number;
/** Server-side responses that closed (finished or torn down): the client let go of them. */
let closedResponses: number;

function clientFor(port: number): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'secret-token' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return new KubeClient(kc);
}

const port = (): number => (server.address() as AddressInfo).port;
const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.on('close', () => closedResponses++);
      handler(req, res, body);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterEach(() => {
  // Hanging handlers of a test must not outlive it.
  server.closeAllConnections();
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function reset(h: Handler): KubeClient {
  handler = h;
  seen = [];
  connections = 0;
  closedResponses = 0;
  return clientFor(port());
}

describe('KubeClient requests', () => {
  it('sends the method, the path, the query string (undefined values left out), the headers and the JSON body', async () => {
    const c = reset((_req, res) => json(res, 200, { ok: true }));
    const out = await c.apply(
      '/api/v1/namespaces/a b/configmaps/x',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } },
      { fieldManager: 'm&n', subresource: 'status' },
    );
    expect(out).toEqual({ ok: true });
    await c.get('/api/v1/pods', { labelSelector: 'a=b,c in (d e)', limit: 5, watch: false, continue: undefined });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'PATCH /api/v1/namespaces/a%20b/configmaps/x/status?fieldManager=m%26n&force=true',
      'GET /api/v1/pods?labelSelector=a%3Db%2Cc+in+%28d+e%29&limit=5&watch=false',
    ]);
    const [patch, get] = seen;
    expect(patch?.headers).toMatchObject({
      authorization: 'Bearer secret-token',
      accept: 'application/json',
      'content-type': APPLY_PATCH,
      'user-agent': 'undici',
    });
    expect(JSON.parse(patch?.body ?? '')).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } });
    expect(get?.headers['content-type']).toBeUndefined();
    expect(get?.body).toBe('');
  });

  it('answers an empty 2xx body with {}', async () => {
    const c = reset((_req, res) => {
      res.writeHead(200);
      res.end();
    });
    await expect(c.delete('/api/v1/namespaces/a/pods/p')).resolves.toEqual({});
    expect(seen[0]?.url).toBe('/api/v1/namespaces/a/pods/p?propagationPolicy=Background');
  });

  it('types a non-2xx answer from its Status body (KubeApiError.fromResponse)', async () => {
    const c = reset((_req, res) => json(res, 409, { kind: 'Status', code: 409, reason: 'AlreadyExists', message: 'pods "p" already exists' }));
    const err = await c.create('/api/v1/namespaces/a/pods', { metadata: { name: 'p' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err).toMatchObject({ status: 409, reason: 'AlreadyExists', method: 'POST', path: '/api/v1/namespaces/a/pods' });
    expect((err as Error).message).toBe('pods "p" already exists');
  });

  it('regression: reads error bodies to the end, so their connections are reused', async () => {
    // 1 MB each: far beyond the socket buffers, an unread body keeps its connection busy.
    const big = 'x'.repeat(1 << 20);
    const c = reset((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(big);
    });
    for (let i = 0; i < 20; i++) await expect(c.get('/api/v1/pods')).rejects.toMatchObject({ status: 500 });
    await until('every response closed', () => closedResponses === 20);
    // undici may open a second connection while the first finishes its response; never one per request.
    expect(connections).toBeLessThanOrEqual(2);
  });

  it('calls onRequest before and onResponse after each request, with the latency to the response headers', async () => {
    const c = reset((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        setTimeout(() => res.end('{}'), 600);
      }, 150);
    });
    const events: string[] = [];
    const latencies: number[] = [];
    c.onRequest = (method, path, query) => events.push(`request ${method} ${path} ${JSON.stringify(query)}`);
    c.onResponse = (method, status, seconds) => {
      events.push(`response ${method} ${status}`);
      latencies.push(seconds);
    };
    const started = performance.now();
    await c.get('/api/v1/pods', { limit: 1 });
    const total = (performance.now() - started) / 1000;
    expect(events).toEqual(['request GET /api/v1/pods {"limit":1}', 'response GET 200']);
    expect(latencies[0]).toBeGreaterThanOrEqual(0.14);
    // Headers, not the body: measured before the body's 600 ms.
    expect(latencies[0]).toBeLessThan(total - 0.4);
  });

  it('times out after requestTimeoutMs as a NetworkError (status 0, retryable), seen by onResponse as status 0', async () => {
    const c = reset(() => undefined); // never answers
    c.requestTimeoutMs = 200;
    const statuses: number[] = [];
    c.onResponse = (_m, status) => statuses.push(status);
    const err = await c.get('/api/v1/pods').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err).toMatchObject({ status: 0, reason: 'NetworkError', retryable: true });
    expect((err as Error).message).toBe('GET /api/v1/pods: The operation was aborted due to timeout');
    expect(statuses).toEqual([0]);
    await until('the abandoned request closed on the server', () => closedResponses === 1);
  });

  it('a timeout while the body is read rejects with the abort reason (the headers were answered)', async () => {
    const c = reset((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"items":[');
    });
    c.requestTimeoutMs = 200;
    const err = await c.get('/api/v1/pods').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DOMException);
    expect((err as DOMException).name).toBe('TimeoutError');
    await until('the abandoned response closed on the server', () => closedResponses === 1);
  });

  it("rethrows the caller's abort as is, not as a NetworkError", async () => {
    const c = reset(() => undefined);
    const controller = new AbortController();
    const p = c.request({ method: 'GET', path: '/api/v1/pods', signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const err = await p.catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(KubeApiError);
    expect((err as Error).name).toBe('AbortError');
  });

  it('types a refused connection as a NetworkError (status 0) naming the cause', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const c = clientFor(deadPort);
    const statuses: number[] = [];
    c.onResponse = (_m, status) => statuses.push(status);
    const err = await c.get('/api/v1/pods').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err).toMatchObject({ status: 0, reason: 'NetworkError', retryable: true });
    expect((err as Error).message).toBe(`GET /api/v1/pods: connect ECONNREFUSED 127.0.0.1:${deadPort}`);
    expect(statuses).toEqual([0]);
  });
});

describe('KubeClient.watch', () => {
  const added = (name: string) => JSON.stringify({ type: 'ADDED', object: { metadata: { name } } });

  it('parses one event per line, across chunk boundaries, and ends cleanly when the server closes', async () => {
    const c = reset((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const text = `${added('a')}\n\n${added('b')}\n${added('c')}`;
      res.write(text.slice(0, 10));
      setTimeout(() => res.write(text.slice(10, 70)), 20);
      setTimeout(() => res.end(text.slice(70)), 40);
    });
    const events: WatchEvent[] = [];
    const h = c.watch('/api/v1/pods', { resourceVersion: '7', timeoutSeconds: 60 }, (e) => events.push(e));
    await h.done;
    expect(events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED a', 'ADDED b', 'ADDED c']);
    expect(seen[0]?.url).toBe('/api/v1/pods?resourceVersion=7&timeoutSeconds=60&watch=true');
  });

  it('types a non-200 answer (410 Gone: the informer re-lists)', async () => {
    const c = reset((_req, res) => json(res, 410, { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' }));
    const h = c.watch('/api/v1/pods', { resourceVersion: '1' }, () => undefined);
    await expect(h.done).rejects.toMatchObject({ status: 410, reason: 'Expired' });
    await until('the error response closed', () => closedResponses === 1);
  });

  it('abort() resolves done and releases the stream, before or after the response headers', async () => {
    let answer = true;
    const c = reset((_req, res) => {
      if (!answer) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`${added('a')}\n`);
    });
    const events: string[] = [];
    const h = c.watch('/api/v1/pods', {}, (e) => events.push(e.type));
    await until('the first event', () => events.length === 1);
    h.abort();
    await expect(h.done).resolves.toBeUndefined();
    await until('the stream closed on the server', () => closedResponses === 1);

    answer = false;
    const early = c.watch('/api/v1/pods', {}, () => undefined);
    await until('the request reached the server', () => seen.length === 2);
    early.abort();
    await expect(early.done).resolves.toBeUndefined();
    await until('the unanswered stream closed on the server', () => closedResponses === 2);
  });

  it('regression: a handler that throws ends the watch with that error and releases the stream, without an unhandled stream error', async () => {
    const c = reset((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`${added('a')}\n`);
    });
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      const h = c.watch('/api/v1/pods', {}, () => {
        throw new Error('handler failed');
      });
      await expect(h.done).rejects.toThrow('handler failed');
      await until('the stream closed on the server', () => closedResponses === 1);
      // Destroying an unfinished undici body errors it: that error must not escape.
      await sleep(50);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });

  it('a stream that goes silent ends at timeoutSeconds + 30 s with the timeout error', async () => {
    const c = reset((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`${added('a')}\n`);
    });
    const events: string[] = [];
    // timeoutSeconds + 30 s = 250 ms: the client's margin over the server's own timeout, made short.
    const h = c.watch('/api/v1/pods', { timeoutSeconds: -29.75 }, (e) => events.push(e.type));
    const err = await h.done.catch((e: unknown) => e);
    expect(events).toEqual(['ADDED']);
    expect((err as DOMException).name).toBe('TimeoutError');
    await until('the stream closed on the server', () => closedResponses === 1);
  });
});

describe('resourcePath', () => {
  it('builds core and group paths, namespaced or not, with encoded names and a subresource only on an object', () => {
    expect(resourcePath({ ...SWARM_RESOURCE })).toBe('/apis/swarm.cfn.dev/v1alpha1/swarms');
    expect(resourcePath({ ...SWARM_RESOURCE, namespace: 'team-a', name: 'lint', subresource: 'status' })).toBe(
      '/apis/swarm.cfn.dev/v1alpha1/namespaces/team-a/swarms/lint/status',
    );
    expect(resourcePath({ ...ROLLOUT_POLICY_RESOURCE, namespace: 'ns' })).toBe('/apis/swarm.cfn.dev/v1alpha1/namespaces/ns/rolloutpolicies');
    expect(resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: 'ns', name: 'a/b', subresource: 'log' })).toBe(
      '/api/v1/namespaces/ns/pods/a%2Fb/log',
    );
    expect(resourcePath({ group: '', version: 'v1', plural: 'pods', subresource: 'status' })).toBe('/api/v1/pods');
  });
});
