// Kubernetes Events for every decision the operator takes, aggregated like
// client-go's recorder: a repeat of the same event bumps its count. Written
// from a bounded queue, a few at a time, behind the reconciles' own writes.
import { createHash } from 'node:crypto';
import { kubeTime } from '../api/common.js';
import { isAlreadyExists, isNotFound } from './errors.js';
import { resourcePath } from './client.js';
import type { KubeClient } from './client.js';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  /** Events written at once (default 4): a burst of reconciles must not spend the API server's capacity on events first. */
  concurrency?: number;
  /** Events waiting at most (default 5000); past it the oldest is dropped and counted, like client-go's full broadcaster channel. */
  capacity?: number;
}

interface Job {
  write: () => Promise<void>;
  done: () => void;
}

export class EventRecorder {
  private readonly counts = new Map<string, number>();
  private readonly queue: Job[] = [];
  private readonly concurrency: number;
  private readonly capacity: number;
  private active = 0;
  private idleWaiters: Array<() => void> = [];
  /** Events dropped because the queue was full. */
  dropped = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly onError: (err: unknown) => void = () => {},
    opts: EventRecorderOptions = {},
  ) {
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.capacity = Math.max(1, opts.capacity ?? 5000);
  }

  /**
   * Queues the event; the promise settles once it is written (or failed, or
   * dropped). Never throws: an event that cannot be written must not fail a reconcile.
   */
  record(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.queue.length >= this.capacity) {
        this.queue.shift()?.done();
        this.dropped++;
        this.onError(new Error(`event queue full (${this.capacity}): oldest event dropped (${this.dropped} so far)`));
      }
      this.queue.push({ write: () => this.write(obj, type, reason, message), done: resolve });
      this.pump();
    });
  }

  /** Resolves when every queued event is written (graceful shutdown). */
  idle(): Promise<void> {
    if (this.active === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.active < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.active++;
      void job.write().finally(() => {
        this.active--;
        job.done();
        this.pump();
        if (this.active === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async write(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const digest = createHash('sha256')
      .update(`${obj.uid ?? obj.name}\0${type}\0${reason}\0${message}`)
      .digest('hex')
      .slice(0, 16);
    const name = `${obj.name.slice(0, 200)}.${digest}`;
    const path = resourcePath({ group: '', version: 'v1', plural: 'events', namespace: obj.namespace });
    const now = kubeTime();
    // Bounded memory over a long life: forgetting only means a fresh create, which falls back to a patch.
    if (this.counts.size > 10_000) this.counts.clear();
    const count = (this.counts.get(name) ?? 0) + 1;
    try {
      if (count > 1) {
        try {
          await this.client.mergePatch(`${path}/${name}`, { count, lastTimestamp: now });
          this.counts.set(name, count);
          return;
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }
      await this.client.create(path, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: obj.namespace },
        involvedObject: obj,
        reason,
        message: message.slice(0, 1024),
        type,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: this.component },
        reportingComponent: this.component,
      });
      this.counts.set(name, 1);
    } catch (e) {
      if (isAlreadyExists(e)) {
        this.counts.set(name, 1);
        await this.client.mergePatch(`${path}/${name}`, { lastTimestamp: now }).catch(this.onError);
        return;
      }
      this.onError(e);
    }
  }
}
