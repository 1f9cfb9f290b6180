// A work queue with client-go's guarantees: a key waits in the queue at most
// once (dedup), is never handed to two workers at once, and a key added while
// it is processed is queued again when its worker calls done().
import { defaultControllerRateLimiter } from './rate-limiter.js';
import type { RateLimiter } from './rate-limiter.js';

export interface WorkQueueHooks {
  depth?(depth: number): void;
  added?(): void;
  retried?(): void;
  /** Seconds an item waited in the queue before a worker got it. */
  queueLatency?(seconds: number): void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  /** Keys handed to a worker, with when (performance.now()). */
  private readonly processing = new Map<string, number>();
  private readonly addedAt = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;

  constructor(
    private readonly rateLimiter: RateLimiter = defaultControllerRateLimiter(),
    private readonly hooks: WorkQueueHooks = {},
  ) {}

  get length(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.hooks.added?.();
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.enqueue(key);
  }

  /** Adds the key after `ms`; an earlier pending add of the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    this.hooks.retried?.();
    this.addAfter(key, this.rateLimiter.when(key));
  }

  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  /** Seconds the longest-held key has been with its worker (workqueue_longest_running_processor_seconds). */
  longestRunningSeconds(): number {
    let oldest = Infinity;
    for (const t of this.processing.values()) oldest = Math.min(oldest, t);
    return oldest === Infinity ? 0 : (performance.now() - oldest) / 1000;
  }

  failures(key: string): number {
    return this.rateLimiter.failures(key);
  }

  /** The next key to work on, or undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.enqueue(key);
  }

  /**
   * For good: keys waiting are dropped, later adds too, and get() answers
   * undefined, so no worker starts a reconcile after it (a process that lost
   * its lease must not act; the next leader lists everything anyway).
   */
  shutDown(): void {
    this.shuttingDown = true;
    for (const key of this.queue.splice(0)) {
      this.dirty.delete(key);
      this.addedAt.delete(key);
    }
    this.hooks.depth?.(0);
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  private enqueue(key: string): void {
    this.addedAt.set(key, performance.now());
    const waiter = this.waiters.shift();
    if (waiter) waiter(this.take(key));
    else {
      this.queue.push(key);
      this.hooks.depth?.(this.queue.length);
    }
  }

  private take(key: string): string {
    this.processing.set(key, performance.now());
    this.dirty.delete(key);
    const t = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (t !== undefined) this.hooks.queueLatency?.((performance.now() - t) / 1000);
    this.hooks.depth?.(this.queue.length);
    return key;
  }
}
