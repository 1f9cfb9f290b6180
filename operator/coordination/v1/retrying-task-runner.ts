// Runs tasks in order with a concurrency limit, a per-attempt timeout and
// retries with exponential backoff.

export interface AttemptContext {
  attempt: number;
  /** Aborted on timeout (reason: TaskTimeoutError) or cancel (reason: TaskCancelledError). */
  signal: AbortSignal;
}

/** A failure with `final` set is the task's last attempt, whatever retries remain (an exit code that means "never retry"). */
export type AttemptOutcome<T> = { ok: true; value: T } | { ok: false; value?: T; error: string; final?: boolean };

export interface ScheduledTask<T> {
  id: string;
  /** Must settle soon after `signal` aborts (the scheduler never abandons a running attempt). */
  run(ctx: AttemptContext): Promise<AttemptOutcome<T>>;
}

export type TaskStatus = 'completed' | 'failed' | 'cancelled';

export interface TaskResult<T> {
  id: string;
  status: TaskStatus;
  attempts: number;
  value?: T;
  error?: string;
  /** From the first attempt's start to the last attempt's end (0 when never started). */
  durationMs: number;
}

export interface SchedulerOptions {
  concurrency: number;
  /** Per-attempt timeout; none when undefined. */
  timeoutMs?: number;
  /** Extra attempts after the first. */
  retries: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export interface SchedulerHooks<T> {
  onAttemptStart?(id: string, attempt: number): void;
  onRetry?(id: string, nextAttempt: number, delayMs: number, error: string, timedOut: boolean): void;
  onTaskDone?(result: TaskResult<T>): void;
}

export class TaskTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs / 1000}s`);
    this.name = 'TaskTimeoutError';
  }
}

export class TaskCancelledError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'TaskCancelledError';
  }
}

/** 100 ms, 200 ms, 400 ms, ... capped. */
export function backoffDelay(failedAttempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, failedAttempt - 1));
}

export class RetryingTaskRunner<T> {
  private readonly controllers = new Set<AbortController>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sleepers = new Set<() => void>();
  private cancelReason: string | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly options: SchedulerOptions,
    private readonly hooks: SchedulerHooks<T> = {},
  ) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(`concurrency: expected an integer >= 1, got ${options.concurrency}`);
    }
    if (!Number.isInteger(options.retries) || options.retries < 0) {
      throw new RangeError(`retries: expected an integer >= 0, got ${options.retries}`);
    }
  }

  get cancelled(): boolean {
    return this.cancelReason !== undefined;
  }

  /** Aborts running attempts, drops backoff waits; unstarted tasks end `cancelled`. */
  cancel(reason: string): void {
    if (this.cancelReason !== undefined) return;
    this.cancelReason = reason;
    for (const wakeSleeper of [...this.sleepers]) wakeSleeper();
    for (const c of this.controllers) c.abort(new TaskCancelledError(reason));
    this.wake?.();
  }

  /** Runs every task; resolves with one result per task id once all have settled. */
  async run(tasks: readonly ScheduledTask<T>[]): Promise<Map<string, TaskResult<T>>> {
    const ids = new Set<string>();
    for (const t of tasks) {
      if (ids.has(t.id)) throw new RangeError(`duplicate task id ${JSON.stringify(t.id)}`);
      ids.add(t.id);
    }
    const results = new Map<string, TaskResult<T>>();
    let next = 0;
    let active = 0;
    let hookError: unknown;

    const settle = (result: TaskResult<T>): void => {
      results.set(result.id, result);
      try {
        this.hooks.onTaskDone?.(result);
      } catch (err) {
        // A broken hook (say, the database refusing a write) stops the run
        // rather than hanging it; run() rethrows once everything has settled.
        hookError ??= err;
        this.cancel(`internal error: ${err instanceof Error ? err.message : String(err)}`);
      }
    };

    await new Promise<void>((resolve) => {
      const pump = (): void => {
        if (this.cancelReason !== undefined) {
          while (next < tasks.length) {
            const { id } = tasks[next++]!;
            settle({ id, status: 'cancelled', attempts: 0, error: this.cancelReason, durationMs: 0 });
          }
        }
        while (this.cancelReason === undefined && active < this.options.concurrency && next < tasks.length) {
          const task = tasks[next++]!;
          active += 1;
          void this.runTask(task).then((r) => {
            active -= 1;
            settle(r);
            pump();
          });
        }
        if (active === 0 && next >= tasks.length) {
          this.wake = undefined;
          resolve();
        }
      };
      this.wake = pump;
      pump();
    });
    if (hookError !== undefined) throw hookError;
    return results;
  }

  private async runTask(task: ScheduledTask<T>): Promise<TaskResult<T>> {
    const start = performance.now();
    const base = this.options.backoffBaseMs ?? 100;
    const max = this.options.backoffMaxMs ?? 10_000;
    let last: { value?: T; error: string } = { error: 'not run' };
    let attempt = 0;
    while (attempt <= this.options.retries) {
      if (this.cancelReason !== undefined) {
        return { id: task.id, status: 'cancelled', attempts: attempt, value: last.value, error: this.cancelReason, durationMs: performance.now() - start };
      }
      attempt += 1;
      const outcome = await this.attempt(task, attempt);
      if (outcome.ok) return { id: task.id, status: 'completed', attempts: attempt, value: outcome.value, durationMs: performance.now() - start };
      last = outcome;
      // An attempt cut short by cancel() is not a verdict on the task.
      if (this.cancelReason !== undefined) {
        return { id: task.id, status: 'cancelled', attempts: attempt, value: last.value, error: this.cancelReason, durationMs: performance.now() - start };
      }
      if (outcome.final) break;
      if (attempt <= this.options.retries) {
        const delay = backoffDelay(attempt, base, max);
        this.hooks.onRetry?.(task.id, attempt + 1, delay, outcome.error, outcome.timedOut);
        await this.sleep(delay);
      }
    }
    return { id: task.id, status: 'failed', attempts: attempt, value: last.value, error: last.error, durationMs: performance.now() - start };
  }

  private async attempt(
    task: ScheduledTask<T>,
    attempt: number,
  ): Promise<{ ok: true; value: T } | { ok: false; value?: T; error: string; final?: boolean; timedOut: boolean }> {
    const controller = new AbortController();
    this.controllers.add(controller);
    let timer: NodeJS.Timeout | undefined;
    if (this.options.timeoutMs !== undefined) {
      const ms = this.options.timeoutMs;
      timer = setTimeout(() => controller.abort(new TaskTimeoutError(ms)), ms);
    }
    this.hooks.onAttemptStart?.(task.id, attempt);
    try {
      const outcome = await task.run({ attempt, signal: controller.signal });
      const timedOut = controller.signal.reason instanceof TaskTimeoutError;
      return outcome.ok ? outcome : { ...outcome, timedOut };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err), timedOut: controller.signal.reason instanceof TaskTimeoutError };
    } finally {
      if (timer) clearTimeout(timer);
      this.controllers.delete(controller);
    }
  }

  /** Resolves after `ms`, or at once when cancelled (the timer is cleared, nothing lingers). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.timers.delete(t);
        this.sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.timers.add(t);
      this.sleepers.add(done);
    });
  }
}
