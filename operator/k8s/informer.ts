// list + watch that never silently stops: client-node's ListWatch re-lists only
// on 410 and gives up on any other error, so this one re-lists on 410 Gone and
// restarts the watch with exponential backoff after any other failure.
import { isGone, KubeApiError } from './errors.js';
import type { KubeClient, KubeObject, WatchEvent, WatchHandle } from './client.js';

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions {
  client: KubeClient;
  /** Collection path, e.g. /apis/swarm.cfn.dev/v1alpha1/swarms */
  path: string;
  labelSelector?: string;
  /** e.g. metadata.name=NAME: one object (kubectl swarm get -w). */
  fieldSelector?: string;
  onEvent: (type: InformerEvent, obj: KubeObject) => void;
  onError?: (err: unknown, retryInMs: number) => void;
  /** Called after each successful (re-)list: the cache is complete. */
  onSynced?: () => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Server-side watch timeout; the watch is re-opened from the last resourceVersion. */
  timeoutSeconds?: number;
}

interface ListResult {
  metadata?: { resourceVersion?: string };
  items: KubeObject[];
}

/** resourceVersions are etcd revisions in every real API server; compare them as such when they parse. */
function newerOrSame(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) >= BigInt(b);
}

/**
 * managedFields (server-side apply bookkeeping) is often the largest part of an
 * object and nothing here reads it: dropping it keeps the cache small.
 */
function slim(o: KubeObject): KubeObject {
  if (o.metadata && 'managedFields' in o.metadata) delete o.metadata.managedFields;
  return o;
}

const keyOf = (o: KubeObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export class Informer {
  private readonly store = new Map<string, KubeObject>();
  private resourceVersion = '';
  private handle: WatchHandle | undefined;
  private stopped = false;
  private backoff: number;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** Number of times the watch was (re)opened: observable for tests and metrics. */
  watchesStarted = 0;
  relists = 0;

  constructor(private readonly opts: InformerOptions) {
    this.backoff = opts.minBackoffMs ?? 200;
  }

  get(key: string): KubeObject | undefined {
    return this.store.get(key);
  }

  /**
   * Puts an object this process just wrote into the cache, unless the cache
   * already holds a newer one: the next reconcile then sees its own write
   * instead of a stale copy (which would only earn a 409).
   */
  upsert(obj: KubeObject): void {
    const key = keyOf(obj);
    const old = this.store.get(key);
    if (old && newerOrSame(old.metadata?.resourceVersion, obj.metadata?.resourceVersion)) return;
    this.store.set(key, slim(obj));
  }

  list(): KubeObject[] {
    return [...this.store.values()];
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.handle?.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        // stop() may have come while listing: never open a watch after it.
        if (this.stopped) break;
        await this.watchOnce();
        this.backoff = this.opts.minBackoffMs ?? 200;
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err)) {
          needList = true;
          continue;
        }
        const delay = this.backoff;
        this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 30_000);
        this.opts.onError?.(err, delay);
        // After an outage the resourceVersion may be compacted: a 410 on the next
        // watch re-lists; a list failure retries here.
        await this.sleep(delay);
      }
    }
  }

  private async relist(): Promise<void> {
    const query: Record<string, string> = {};
    if (this.opts.labelSelector) query.labelSelector = this.opts.labelSelector;
    if (this.opts.fieldSelector) query.fieldSelector = this.opts.fieldSelector;
    const list = await this.opts.client.get<ListResult>(this.opts.path, query);
    this.relists++;
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = keyOf(item);
      seen.add(key);
      const old = this.store.get(key);
      this.store.set(key, slim(item));
      if (!old) this.opts.onEvent('add', item);
      else if (old.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.opts.onEvent('update', item);
    }
    for (const [key, obj] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.opts.onEvent('delete', obj);
      }
    }
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    this.opts.onSynced?.();
  }

  private async watchOnce(): Promise<void> {
    this.watchesStarted++;
    this.handle = this.opts.client.watch(
      this.opts.path,
      {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.opts.timeoutSeconds ?? 300,
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
      },
      (e) => this.handleEvent(e),
    );
    await this.handle.done;
  }

  private handleEvent(e: WatchEvent): void {
    if (e.type === 'ERROR') {
      const status = e.object as { code?: number; reason?: string; message?: string };
      throw new KubeApiError(status.code ?? 500, status.reason ?? 'WatchError', status.message ?? 'watch error', 'GET', this.opts.path);
    }
    const rv = e.object.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (e.type === 'BOOKMARK') return;
    const key = keyOf(e.object);
    if (e.type === 'DELETED') {
      this.store.delete(key);
      this.opts.onEvent('delete', e.object);
      return;
    }
    const old = this.store.get(key);
    // Never step back: the cache may already hold a newer copy this process wrote (upsert).
    if (
      old &&
      old.metadata?.resourceVersion !== e.object.metadata?.resourceVersion &&
      newerOrSame(old.metadata?.resourceVersion, e.object.metadata?.resourceVersion)
    )
      return;
    const existed = old !== undefined;
    this.store.set(key, slim(e.object));
    this.opts.onEvent(existed ? 'update' : 'add', e.object);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}
