// A small Kubernetes-style API server over real HTTP, for unit tests of the
// client layer's controllers (leader election, informer): objects in memory
// with resourceVersions from one counter, create (409 AlreadyExists), get
// (404), optimistic PUT (409 Conflict on a stale resourceVersion), delete,
// list with the collection's resourceVersion, and watch streams that replay
// from a resourceVersion, carry later writes, and can be ended or answered
// with a 410 / an ERROR event on demand. The integration suite runs the same
// code against a real API server; this one gives the unit tests control over
// time and faults.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../../../operator/k8s/client.js';
import type { KubeObject, WatchEvent } from '../../../operator/k8s/client.js';

interface Stored {
  collection: string;
  object: KubeObject;
}

interface Watcher {
  collection: string;
  res: ServerResponse;
}

/** A fault for the next request that matches: its status, and which method and path it hits. */
export interface Fault {
  method: string;
  /** A path prefix; watches are GETs of the collection with ?watch=true. */
  path: string;
  watch?: boolean;
  status: number;
  reason: string;
}

export class MemoryApiServer {
  private readonly objects = new Map<string, Stored>();
  private readonly history: Array<{ rv: number; collection: string; event: WatchEvent }> = [];
  private readonly watchers = new Set<Watcher>();
  private readonly faults: Fault[] = [];
  private server: Server | undefined;
  private rv = 100;
  /** While true every request gets 503 (an API server that is down). */
  down = false;
  /** Every request, "METHOD path" (watches as "WATCH path"). */
  readonly requests: string[] = [];

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => this.handle(req, res, body));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  client(): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    return new KubeClient(kc);
  }

  /** The next request matching `fault` fails with it. */
  failNext(fault: Fault): void {
    this.faults.push(fault);
  }

  /** Ends every open watch cleanly (as the server's timeoutSeconds does). */
  endWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** Sends an ERROR event (e.g. 410 Gone: the resourceVersion was compacted) on every open watch, then ends it. */
  errorWatches(code: number, reason: string): void {
    for (const w of this.watchers) {
      w.res.write(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code, reason, message: reason } })}\n`);
      w.res.end();
    }
    this.watchers.clear();
  }

  /** Open watches of a collection. */
  watching(collection: string): number {
    return [...this.watchers].filter((w) => w.collection === collection).length;
  }

  /** Writes an object as another client would (create or replace), with a new resourceVersion. */
  put(collection: string, obj: KubeObject): KubeObject {
    const path = `${collection}/${obj.metadata!.name!}`;
    const existed = this.objects.has(path);
    return this.store(collection, path, obj, existed ? 'MODIFIED' : 'ADDED');
  }

  remove(collection: string, name: string): void {
    const path = `${collection}/${name}`;
    const old = this.objects.get(path);
    if (!old) return;
    this.objects.delete(path);
    this.record(collection, { type: 'DELETED', object: { ...old.object, metadata: { ...old.object.metadata, resourceVersion: String(++this.rv) } } });
  }

  /** Deletes an object without telling any watch: as if its DELETED event was compacted away. */
  removeUnseen(collection: string, name: string): void {
    this.objects.delete(`${collection}/${name}`);
    this.rv++;
  }

  get(path: string): KubeObject | undefined {
    return this.objects.get(path)?.object;
  }

  private store(collection: string, path: string, obj: KubeObject, type: 'ADDED' | 'MODIFIED'): KubeObject {
    const object: KubeObject = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    this.objects.set(path, { collection, object });
    this.record(collection, { type, object });
    return object;
  }

  private record(collection: string, event: WatchEvent): void {
    this.history.push({ rv: this.rv, collection, event });
    for (const w of this.watchers) if (w.collection === collection) w.res.write(`${JSON.stringify(event)}\n`);
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const watch = url.searchParams.get('watch') === 'true';
    this.requests.push(`${watch ? 'WATCH' : method} ${path}`);
    if (this.down) return this.status(res, 503, 'ServiceUnavailable');
    const i = this.faults.findIndex((f) => f.method === method && path.startsWith(f.path) && (f.watch ?? false) === watch);
    if (i >= 0) {
      const [f] = this.faults.splice(i, 1);
      return this.status(res, f!.status, f!.reason);
    }
    if (method === 'GET' && watch) return this.watch(path, url.searchParams.get('resourceVersion') ?? '', res);
    if (method === 'GET') {
      const one = this.objects.get(path);
      if (one) return this.json(res, 200, one.object);
      const items = [...this.objects.values()].filter((s) => s.collection === path).map((s) => s.object);
      if (items.length > 0 || this.isCollection(path)) return this.json(res, 200, { items, metadata: { resourceVersion: String(this.rv) } });
      return this.status(res, 404, 'NotFound');
    }
    const obj = body ? (JSON.parse(body) as KubeObject) : {};
    if (method === 'POST') {
      const target = `${path}/${obj.metadata?.name ?? ''}`;
      if (this.objects.has(target)) return this.status(res, 409, 'AlreadyExists');
      return this.json(res, 201, this.store(path, target, obj, 'ADDED'));
    }
    if (method === 'PUT') {
      const old = this.objects.get(path);
      if (!old) return this.status(res, 404, 'NotFound');
      if (obj.metadata?.resourceVersion !== old.object.metadata?.resourceVersion) return this.status(res, 409, 'Conflict');
      return this.json(res, 200, this.store(old.collection, path, obj, 'MODIFIED'));
    }
    if (method === 'DELETE') {
      const old = this.objects.get(path);
      if (!old) return this.status(res, 404, 'NotFound');
      this.remove(old.collection, old.object.metadata!.name!);
      return this.json(res, 200, old.object);
    }
    return this.status(res, 405, 'MethodNotAllowed');
  }

  /** A path is a collection when it ends in a plural seen before (collections exist while empty). */
  private isCollection(path: string): boolean {
    return this.history.some((h) => h.collection === path) || /\/(leases|swarms|pods)$/.test(path);
  }

  private watch(collection: string, from: string, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    const since = Number(from || '0');
    for (const h of this.history) if (h.collection === collection && h.rv > since) res.write(`${JSON.stringify(h.event)}\n`);
    const w = { collection, res };
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private status(res: ServerResponse, code: number, reason: string): void {
    this.json(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message: `${reason} (memory API server)` });
  }
}

/** Polls `check` every 5 ms until it holds, or fails naming `what`. */
export async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
