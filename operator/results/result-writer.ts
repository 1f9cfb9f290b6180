// Between the coordinator and a sink: put() returns at once, records are
// stored a few at a time, a later record of an index is never overtaken by an
// earlier one, and a failing sink (a full volume, an unreachable store) is
// retried with backoff while the records wait in memory: none is dropped.
import type { ResultSink } from './result-sink.js';
import type { StoredResult } from './stored-result.js';

export interface ResultWriterStats {
  /** Indexes whose latest record is stored (this writer's and those it was told of). */
  stored: number;
  bytes: number;
  /** Indexes with a record not stored yet (waiting, in flight or retrying). */
  pending: number;
  /** The last store error; cleared by the next success. */
  lastError?: string;
}

export interface ResultWriterOptions {
  /** Puts in flight at once (default 4). */
  concurrency?: number;
  /** First retry delay after a failure, doubled per consecutive failure up to retryMaxMs (defaults 200 ms, 10 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Records already stored (a replacement coordinator's inventory of the sink). */
  known?: Iterable<{ index: number; bytes: number }>;
  /** Called once a record is durable (not for a record a newer one of its index replaced before it was written). */
  onStored?: (record: StoredResult) => void;
  /** Called when stats change (a store, a failure). */
  onChange?: () => void;
}

/** The run's end when records could not be stored in time (the reconciler's ResultsNotStored). */
export const notStoredMessage = (count: number, lastError: string | undefined): string =>
  `${count} result${count === 1 ? '' : 's'} could not be stored: ${lastError ?? 'the sink did not answer in time'}`;
export const isNotStoredMessage = (m: string | undefined): boolean => m !== undefined && /^\d+ results? could not be stored: /.test(m);

const message = (err: unknown): string => {
  const m = (err as { message?: unknown } | undefined)?.message;
  return (typeof m === 'string' ? m : String(err)).slice(0, 4096);
};

export class ResultWriter {
  private readonly concurrency: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  /** Latest record per index not yet handed to the sink. */
  private readonly waiting = new Map<number, StoredResult>();
  /** Indexes to hand to the sink, in arrival order (an index at most once). */
  private readonly queue: number[] = [];
  private readonly queued = new Set<number>();
  private readonly inFlight = new Set<number>();
  private readonly storedBytes = new Map<number, number>();
  private bytes = 0;
  private lastError: string | undefined;
  private failures = 0;
  private backoff: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly sink: ResultSink,
    private readonly opts: ResultWriterOptions = {},
  ) {
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.retryBaseMs = opts.retryBaseMs ?? 200;
    this.retryMaxMs = opts.retryMaxMs ?? 10_000;
    for (const k of opts.known ?? []) this.setStored(k.index, k.bytes);
  }

  get location(): string {
    return this.sink.location;
  }

  /** Takes the record and returns at once; it is stored in the background. */
  put(record: StoredResult): void {
    if (this.closed) throw new Error('result writer is closed');
    this.waiting.set(record.index, record);
    this.enqueue(record.index);
    this.pump();
  }

  stats(): ResultWriterStats {
    let pending = this.waiting.size;
    for (const i of this.inFlight) if (!this.waiting.has(i)) pending++;
    return { stored: this.storedBytes.size, bytes: this.bytes, pending, ...(this.lastError !== undefined ? { lastError: this.lastError } : {}) };
  }

  /** Indexes with a record not stored yet. */
  pendingIndexes(): number[] {
    return [...new Set([...this.waiting.keys(), ...this.inFlight])].sort((a, b) => a - b);
  }

  /**
   * Waits until every record is stored, retrying as usual, at most until
   * `deadlineMs` from now. Resolves true when nothing is pending.
   */
  async drain(deadlineMs: number): Promise<boolean> {
    if (this.idle()) return true;
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<boolean>((resolve) => {
      this.idleWaiters.push(() => resolve(true));
      timer = setTimeout(() => resolve(this.idle()), Math.max(0, deadlineMs));
    });
    const ok = await done;
    clearTimeout(timer);
    return ok;
  }

  /**
   * Stops retrying and reporting: a put still in flight may land, but it is
   * no longer reported (the caller has published its last word).
   */
  close(): void {
    this.closed = true;
    if (this.backoff) clearTimeout(this.backoff);
    this.backoff = undefined;
  }

  private idle(): boolean {
    return this.waiting.size === 0 && this.inFlight.size === 0;
  }

  private enqueue(index: number): void {
    if (this.queued.has(index)) return;
    this.queued.add(index);
    this.queue.push(index);
  }

  private pump(): void {
    if (this.backoff || this.closed) return;
    for (let i = 0; i < this.queue.length && this.inFlight.size < this.concurrency;) {
      const index = this.queue[i]!;
      // The same index is being written: its newer record goes after, never beside it.
      if (this.inFlight.has(index)) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.queued.delete(index);
      const record = this.waiting.get(index);
      if (!record) continue;
      this.waiting.delete(index);
      this.inFlight.add(index);
      void this.write(record);
    }
  }

  private async write(record: StoredResult): Promise<void> {
    const { index } = record;
    try {
      const { bytes } = await this.sink.put(record);
      if (this.closed) return;
      this.inFlight.delete(index);
      this.setStored(index, bytes);
      this.failures = 0;
      this.lastError = undefined;
      // A newer record that arrived while this one was written is still waiting (and queued).
      if (!this.waiting.has(index)) this.opts.onStored?.(record);
    } catch (err) {
      if (this.closed) return;
      this.inFlight.delete(index);
      this.lastError = message(err);
      this.failures++;
      // Kept, unless a newer record of the index arrived meanwhile; first in line for the retry.
      if (!this.waiting.has(index)) this.waiting.set(index, record);
      if (!this.queued.has(index)) {
        this.queued.add(index);
        this.queue.unshift(index);
      }
      this.scheduleRetry();
    }
    this.opts.onChange?.();
    if (this.idle()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
    this.pump();
  }

  /** The sink fails as a whole (volume full, store down): pause every put, not just this one. */
  private scheduleRetry(): void {
    if (this.backoff || this.closed) return;
    const delay = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(this.failures - 1, 20));
    this.backoff = setTimeout(() => {
      this.backoff = undefined;
      this.pump();
    }, delay);
  }

  private setStored(index: number, bytes: number): void {
    this.bytes += bytes - (this.storedBytes.get(index) ?? 0);
    this.storedBytes.set(index, bytes);
  }
}
