// The only module that talks to the API server: a thin REST client over the
// kubeconfig's transport (TLS, client certs, tokens come from client-node),
// with server-side apply on objects and subresources and typed errors.
//
// Requests go through undici's dispatcher API (`dispatcher.request`), not
// WHATWG fetch: same connection pool (HTTP/2 when the API server offers it, as
// it does), without fetch's Request/Response objects, web streams and
// AbortSignal plumbing, which were the operator's largest CPU cost after GC.
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { type Dispatcher, getGlobalDispatcher } from 'undici';
import { KubeApiError } from './errors.js';

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
};

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  method: keyof typeof HttpMethod;
  path: string;
  query?: Query;
  body?: unknown;
  contentType?: string;
  /** Accept header (default application/json). */
  accept?: string;
  signal?: AbortSignal;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

export interface WatchHandle {
  abort(): void;
  /** Settles when the stream ends: resolves on a clean close, rejects on an error. */
  done: Promise<void>;
}

export interface ApplyOptions {
  fieldManager: string;
  force?: boolean;
  subresource?: 'status';
}

export const APPLY_PATCH = 'application/apply-patch+yaml';
export const MERGE_PATCH = 'application/merge-patch+json';

/** The REST path of a resource collection or object. */
export function resourcePath(r: { group: string; version: string; plural: string; namespace?: string; name?: string; subresource?: string }): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  const ns = r.namespace ? `/namespaces/${encodeURIComponent(r.namespace)}` : '';
  const name = r.name ? `/${encodeURIComponent(r.name)}` : '';
  const sub = r.name && r.subresource ? `/${r.subresource}` : '';
  return `${base}${ns}/${r.plural}${name}${sub}`;
}

/** Which kubeconfig `cfn operator` uses, and why (logged at start). */
export interface KubeconfigChoice {
  /** The file (or KUBECONFIG's list of files) to load; undefined: client-node's default (~/.kube/config, else in-cluster). */
  path: string | undefined;
  source: '--kubeconfig' | 'KUBECONFIG' | 'local control plane' | 'default';
  /** What the default resolves to, for the log line. */
  description: string;
}

/** The admin kubeconfig `npm run cluster:up` (test/cluster/cluster.sh) writes for its default instance. */
export function localControlPlaneKubeconfig(repoRoot: string, env: { SWARM_CLUSTER_STATE_DIR?: string | undefined }): string {
  return join(env.SWARM_CLUSTER_STATE_DIR || join(repoRoot, '.local'), 'cluster', 'kubeconfig');
}

/**
 * The kubeconfig to run against: --kubeconfig, else $KUBECONFIG, else (outside
 * a cluster) the local control plane's when `npm run cluster:up` wrote one,
 * else client-node's default (~/.kube/config, else the in-cluster service
 * account). Pure: the environment and the file system are inputs.
 */
export function chooseKubeconfig(input: {
  flag?: string | undefined;
  env: {
    KUBECONFIG?: string | undefined;
    KUBERNETES_SERVICE_HOST?: string | undefined;
    SWARM_CLUSTER_STATE_DIR?: string | undefined;
    HOME?: string | undefined;
  };
  repoRoot: string;
  existsSync: (path: string) => boolean;
}): KubeconfigChoice {
  const { flag, env } = input;
  if (flag) return { path: flag, source: '--kubeconfig', description: flag };
  if (env.KUBECONFIG) return { path: env.KUBECONFIG, source: 'KUBECONFIG', description: env.KUBECONFIG };
  const inCluster = Boolean(env.KUBERNETES_SERVICE_HOST);
  if (!inCluster) {
    const local = localControlPlaneKubeconfig(input.repoRoot, env);
    if (input.existsSync(local)) return { path: local, source: 'local control plane', description: local };
  }
  const home = env.HOME ? join(env.HOME, '.kube', 'config') : undefined;
  const description =
    home && input.existsSync(home) ? home : inCluster ? 'in-cluster service account' : 'none found (~/.kube/config missing, not in a cluster)';
  return { path: undefined, source: 'default', description };
}

export class KubeClient {
  private readonly server: string;
  /**
   * Credentials and the TLS connection pool, computed once: client-node builds
   * a new agent (a new TLS handshake) on every request otherwise. Headers are
   * refreshed periodically so rotating tokens keep working.
   */
  private auth: { headers: Readonly<Record<string, string>>; dispatcher: Dispatcher; at: number } | undefined;
  private static readonly AUTH_REFRESH_MS = 60_000;
  requestTimeoutMs = 30_000;
  /** Sees every request before it is sent (an RBAC audit records them). */
  onRequest: ((method: string, path: string, query: Query) => void) | undefined;
  /** Sees every answer (status 0: no answer) and its latency to the response headers: the rest_client_* metrics. */
  onResponse: ((method: string, status: number, seconds: number) => void) | undefined;

  constructor(readonly config: KubeConfig) {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/$/, '');
  }

  /**
   * From a kubeconfig file (or a KUBECONFIG-style list of files, merged like
   * kubectl), else $KUBECONFIG / ~/.kube/config / in-cluster.
   */
  static load(kubeconfigPath?: string, context?: string): KubeClient {
    const kc = new KubeConfig();
    const files = (kubeconfigPath ?? '').split(delimiter).filter(Boolean);
    if (files.length === 0) kc.loadFromDefault();
    else {
      kc.loadFromFile(files[0]!);
      for (const file of files.slice(1)) {
        const more = new KubeConfig();
        more.loadFromFile(file);
        kc.mergeConfig(more);
      }
    }
    if (context) {
      if (!kc.getContextObject(context)) throw new Error(`context ${JSON.stringify(context)} not found in the kubeconfig`);
      kc.setCurrentContext(context);
    }
    return new KubeClient(kc);
  }

  /** The current context's namespace, as kubectl defaults it. */
  get namespace(): string {
    return this.config.getContextObject(this.config.getCurrentContext())?.namespace || 'default';
  }

  async request<T = KubeObject>(opts: RequestOptions): Promise<T> {
    // No request may hang a reconcile forever (a half-open connection after an API server restart).
    const res = await this.send({ ...opts, signal: opts.signal ?? AbortSignal.timeout(this.requestTimeoutMs) });
    // Read to the end whatever the status: that releases the stream (HTTP/2) or connection (HTTP/1.1).
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) throw KubeApiError.fromResponse(res.statusCode, text, opts.method, opts.path);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** A plain-text answer (a pod's log), whole. */
  async getText(path: string, query?: Query): Promise<string> {
    const res = await this.send({
      method: 'GET',
      path,
      accept: 'text/plain, */*',
      ...(query ? { query } : {}),
      signal: AbortSignal.timeout(this.requestTimeoutMs),
    });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) throw KubeApiError.fromResponse(res.statusCode, text, 'GET', path);
    return text;
  }

  get<T = KubeObject>(path: string, query?: Query): Promise<T> {
    return this.request<T>({ method: 'GET', path, ...(query ? { query } : {}) });
  }

  create<T = KubeObject>(collectionPath: string, body: object, fieldManager?: string): Promise<T> {
    return this.request<T>({ method: 'POST', path: collectionPath, body, query: { fieldManager } });
  }

  delete(path: string, query?: Query): Promise<KubeObject> {
    return this.request({ method: 'DELETE', path, query: { propagationPolicy: 'Background', ...query } });
  }

  mergePatch<T = KubeObject>(path: string, patch: unknown, fieldManager?: string): Promise<T> {
    return this.request<T>({ method: 'PATCH', path, body: patch, contentType: MERGE_PATCH, query: { fieldManager } });
  }

  /** Server-side apply of `obj` (which must carry apiVersion, kind, name) at `objectPath`. */
  apply<T = KubeObject>(objectPath: string, obj: object, opts: ApplyOptions): Promise<T> {
    const path = opts.subresource ? `${objectPath}/${opts.subresource}` : objectPath;
    return this.request<T>({
      method: 'PATCH',
      path,
      body: obj,
      contentType: APPLY_PATCH,
      query: { fieldManager: opts.fieldManager, force: opts.force ?? true },
    });
  }

  /** One watch stream; callers restart it (see informer.ts). */
  watch(path: string, query: Query, onEvent: (e: WatchEvent) => void): WatchHandle {
    const controller = new AbortController();
    let abortedByCaller = false;
    // The server ends a watch after timeoutSeconds; a connection that dies
    // silently must not hang the informer past that (plus a margin).
    const serverTimeout = typeof query.timeoutSeconds === 'number' ? query.timeoutSeconds : 300;
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout((serverTimeout + 30) * 1000)]);
    const done = (async () => {
      const res = await this.send({ method: 'GET', path, query: { ...query, watch: true }, signal });
      if (res.statusCode !== 200) throw KubeApiError.fromResponse(res.statusCode, await res.body.text(), 'GET', path);
      const input = res.body;
      // A reset or an abort errors the stream; readline then ends the loop (by
      // throwing it) and the informer re-watches. Unlistened, that error would
      // crash the process.
      input.on('error', () => undefined);
      const lines = createInterface({ input });
      try {
        for await (const line of lines) {
          if (line) onEvent(JSON.parse(line) as WatchEvent);
        }
      } finally {
        // Release the stream however the loop ended (an ERROR event throws out of it).
        // Readline first: destroying an unfinished undici body errors it
        // ("Request aborted"), and readline would re-emit that error with no
        // one listening once the loop is left.
        lines.close();
        input.destroy();
      }
    })().catch((e: unknown) => {
      if (abortedByCaller) return;
      throw e;
    });
    return {
      abort: () => {
        abortedByCaller = true;
        controller.abort();
      },
      done,
    };
  }

  /**
   * Ends this client's connections (a short-lived client: `kubectl swarm`).
   * Left open, an idle HTTP/2 session is destroyed later by undici's idle
   * timer, in whatever code runs then. The global dispatcher is left alone.
   */
  async close(): Promise<void> {
    const dispatcher = this.auth?.dispatcher;
    this.auth = undefined;
    if (dispatcher && dispatcher !== getGlobalDispatcher()) await dispatcher.destroy();
  }

  private async credentials(url: URL) {
    if (!this.auth || Date.now() - this.auth.at > KubeClient.AUTH_REFRESH_MS) {
      const ctx = new RequestContext(url.toString(), HttpMethod.GET);
      await this.config.applySecurityAuthentication(ctx);
      // The headers fetch sent besides these: Accept, and its default User-Agent
      // (kept: audit logs and API server metrics show it). Not fetch's
      // Accept-Encoding: responses come uncompressed (no gzip on either side).
      const headers: Record<string, string> = { ...ctx.getHeaders(), Accept: 'application/json' };
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'user-agent')) headers['User-Agent'] = 'undici';
      // No dispatcher from client-node (no TLS options, no proxy): fetch used the global one.
      this.auth = { headers, dispatcher: this.auth?.dispatcher ?? ctx.getDispatcher() ?? getGlobalDispatcher(), at: Date.now() };
    }
    return this.auth;
  }

  /**
   * One request; resolves at the response headers. The caller must consume or
   * destroy the returned body, or its stream / connection stays taken.
   */
  private async send(opts: RequestOptions): Promise<Dispatcher.ResponseData> {
    this.onRequest?.(opts.method, opts.path, opts.query ?? {});
    const url = new URL(this.server + opts.path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const auth = await this.credentials(url);
    let headers = opts.accept ? { ...auth.headers, Accept: opts.accept } : auth.headers;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers = { ...headers, 'Content-Type': opts.contentType ?? 'application/json' };
    }
    const started = performance.now();
    let res: Dispatcher.ResponseData;
    try {
      res = await auth.dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: opts.method,
        headers,
        ...(body !== undefined ? { body } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (e) {
      this.onResponse?.(opts.method, 0, (performance.now() - started) / 1000);
      if (opts.signal?.aborted && !(opts.signal.reason instanceof DOMException && opts.signal.reason.name === 'TimeoutError')) throw e;
      // Connection refused, reset, TLS trouble: the API server may come back.
      throw new KubeApiError(0, 'NetworkError', `${opts.method} ${opts.path}: ${networkErrorMessage(e)}`, opts.method, opts.path);
    }
    try {
      this.onResponse?.(opts.method, res.statusCode, (performance.now() - started) / 1000);
    } catch (e) {
      // Release the stream; destroying an unread body errors it, so listen.
      res.body.on('error', () => undefined).destroy();
      throw e;
    }
    return res;
  }
}

/**
 * What went wrong on the way to the API server, as fetch's `cause` said it
 * (fetch wrapped these in a TypeError "fetch failed"; the dispatcher rejects
 * with them directly). Duck-typed: errors from another realm (Node's own, seen
 * from a vm context such as jest's) are not `instanceof Error` there.
 */
function networkErrorMessage(e: unknown): string {
  if (typeof e !== 'object' || e === null || !('message' in e) || typeof e.message !== 'string') return String(e);
  if (e.message) return e.message;
  // A connection attempt to every address of a name (autoSelectFamily) fails as one AggregateError without a message.
  if ('errors' in e && Array.isArray(e.errors) && e.errors.length > 0) return e.errors.map(networkErrorMessage).join('; ');
  if ('cause' in e && e.cause !== undefined) return networkErrorMessage(e.cause);
  return String(e);
}
