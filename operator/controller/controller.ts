// Runs a reconcile function over a work queue with a bounded number of
// workers: never two reconciles of one key at once, retryable errors come back
// with backoff, permanent ones do not, and every outcome is counted.
import { isConflict, isRetryable, RetryLaterError } from '../k8s/errors.js';
import { WorkQueue } from './work-queue.js';
import type { OperatorMetrics } from '../observability/metrics.js';
import type { RateLimiter } from './rate-limiter.js';
import type { Logger } from 'pino';

export interface ReconcileResult {
  /** Look again after this long even if nothing changes (timeouts, TTLs). */
  requeueAfterMs?: number;
}

export type Reconciler = (key: string) => Promise<ReconcileResult | void>;

export interface ControllerOptions {
  name: string;
  reconcile: Reconciler;
  workers?: number;
  metrics?: OperatorMetrics;
  logger?: Logger;
  rateLimiter?: RateLimiter;
}

/** The `result` label values of controller_runtime_reconcile_total. */
const RESULTS = ['success', 'error', 'requeue_after'] as const;

/** namespace/name of a key, for log lines. */
const keyFields = (key: string) => {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
};

export class Controller {
  readonly queue: WorkQueue;
  private workers: Promise<void>[] = [];
  private stopped = false;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: ControllerOptions) {
    const m = opts.metrics;
    const name = opts.name;
    this.queue = new WorkQueue(opts.rateLimiter, {
      depth: (d) => m?.workqueueDepth.set({ name }, d),
      added: () => m?.workqueueAdds.inc({ name }),
      retried: () => m?.workqueueRetries.inc({ name }),
      queueLatency: (s) => m?.workqueueQueueDuration.observe({ name }, s),
    });
    // Exported from the start, as controller-runtime does: alerts and dashboards
    // see 0, not nothing, before the first reconcile.
    m?.workqueueDepth.set({ name }, 0);
    m?.addQueue(name, this.queue);
    for (const result of RESULTS) m?.reconcileTotal.inc({ controller: name, result }, 0);
    m?.reconcileErrors.inc({ controller: name }, 0);
    m?.activeWorkers.set({ controller: name }, 0);
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  /**
   * Starts the workers, once: a stopped controller's queue is shut down for
   * good (keys added later are dropped), so starting it again is refused
   * rather than left running workers that exit at once. Build a new one.
   */
  start(): void {
    if (this.stopped) throw new Error(`controller ${this.opts.name}: stopped for good; build a new controller to run again`);
    if (this.workers.length) return;
    const n = this.opts.workers ?? 4;
    for (let i = 0; i < n; i++) this.workers.push(this.worker());
  }

  /** Stops taking work and waits for reconciles in flight to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.shutDown();
    await Promise.all(this.workers);
    this.workers = [];
  }

  /** Resolves when the queue is empty and no reconcile runs (for tests and benchmarks). */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.inFlight++;
      this.opts.metrics?.activeWorkers.inc({ controller: this.opts.name });
      try {
        await this.process(key);
      } finally {
        this.queue.done(key);
        this.inFlight--;
        this.opts.metrics?.activeWorkers.dec({ controller: this.opts.name });
        if (this.inFlight === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      }
    }
  }

  private async process(key: string): Promise<void> {
    const controller = this.opts.name;
    const m = this.opts.metrics;
    const end = m?.reconcileTime.startTimer({ controller });
    try {
      const result = await this.opts.reconcile(key);
      this.queue.forget(key);
      if (result?.requeueAfterMs !== undefined) {
        this.queue.addAfter(key, result.requeueAfterMs);
        m?.reconcileTotal.inc({ controller, result: 'requeue_after' });
      } else {
        m?.reconcileTotal.inc({ controller, result: 'success' });
      }
    } catch (err) {
      // A 409 is optimistic concurrency at work (a write raced one of the
      // coordinators' progress writes): read again and retry, never an error
      // of the operator's, in the metrics its alert reads or in the log.
      if (isConflict(err)) {
        this.queue.addRateLimited(key);
        m?.reconcileTotal.inc({ controller, result: 'requeue' });
        this.opts.logger?.debug({ ...keyFields(key), err: String(err) }, 'conflict, retrying on fresh state');
        return;
      }
      m?.reconcileErrors.inc({ controller });
      m?.reconcileTotal.inc({ controller, result: 'error' });
      if (isRetryable(err)) {
        if (err instanceof RetryLaterError && err.afterMs !== undefined) this.queue.addAfter(key, err.afterMs);
        else this.queue.addRateLimited(key);
        this.opts.logger?.warn({ ...keyFields(key), err: String(err), failures: this.queue.failures(key) }, 'reconcile failed, retrying');
      } else {
        this.queue.forget(key);
        this.opts.logger?.error({ ...keyFields(key), err: String(err) }, 'reconcile failed permanently');
      }
    } finally {
      end?.();
    }
  }
}
