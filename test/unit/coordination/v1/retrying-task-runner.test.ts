import { describe, expect, it } from '@jest/globals';
import { RetryingTaskRunner, backoffDelay, TaskTimeoutError } from '../../../../operator/coordination/v1/retrying-task-runner.js';
import type { AttemptContext, AttemptOutcome, ScheduledTask } from '../../../../operator/coordination/v1/retrying-task-runner.js';

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function task(id: string, run: (ctx: AttemptContext) => Promise<AttemptOutcome<string>>): ScheduledTask<string> {
  return { id, run };
}

const ok = (value: string) => async (): Promise<AttemptOutcome<string>> => ({ ok: true, value });

describe('RetryingTaskRunner', () => {
  it('never runs more than `concurrency` tasks at once, and runs them all', async () => {
    let running = 0;
    let peak = 0;
    const tasks = Array.from({ length: 40 }, (_, i) =>
      task(`t${i}`, async () => {
        running += 1;
        peak = Math.max(peak, running);
        await delay(5);
        running -= 1;
        return { ok: true, value: `v${i}` };
      }),
    );
    const results = await new RetryingTaskRunner<string>({ concurrency: 4, retries: 0 }).run(tasks);
    expect(peak).toBe(4);
    expect([...results.values()].every((r) => r.status === 'completed')).toBe(true);
    expect(results.get('t39')?.value).toBe('v39');
  });

  it('retries a failing task with exponential backoff and reports attempts', async () => {
    const attemptsAt: number[] = [];
    const retries: Array<[number, number]> = [];
    const scheduler = new RetryingTaskRunner<string>(
      { concurrency: 1, retries: 3, backoffBaseMs: 20 },
      { onRetry: (_id, next, delayMs) => retries.push([next, delayMs]) },
    );
    const results = await scheduler.run([
      task('flaky', async ({ attempt }) => {
        attemptsAt.push(performance.now());
        return attempt < 3 ? { ok: false, error: `attempt ${attempt} failed` } : { ok: true, value: 'finally' };
      }),
    ]);
    expect(results.get('flaky')).toMatchObject({ status: 'completed', attempts: 3, value: 'finally' });
    expect(retries).toEqual([
      [2, 20],
      [3, 40],
    ]);
    expect(attemptsAt[1]! - attemptsAt[0]!).toBeGreaterThanOrEqual(18);
    expect(attemptsAt[2]! - attemptsAt[1]!).toBeGreaterThanOrEqual(38);
  });

  it('gives up after the retries with the last error', async () => {
    const results = await new RetryingTaskRunner<string>({ concurrency: 2, retries: 2, backoffBaseMs: 1 }).run([
      task('bad', async ({ attempt }) => ({ ok: false, error: `boom ${attempt}` })),
      task('thrower', async () => {
        throw new Error('thrown');
      }),
    ]);
    expect(results.get('bad')).toMatchObject({ status: 'failed', attempts: 3, error: 'boom 3' });
    expect(results.get('thrower')).toMatchObject({ status: 'failed', attempts: 3, error: 'thrown' });
  });

  it('aborts an attempt at the per-task timeout with a TaskTimeoutError', async () => {
    let reason: unknown;
    const results = await new RetryingTaskRunner<string>({ concurrency: 1, retries: 0, timeoutMs: 50 }).run([
      task(
        'slow',
        ({ signal }) =>
          new Promise((resolve) => {
            signal.addEventListener('abort', () => {
              reason = signal.reason;
              resolve({ ok: false, error: (signal.reason as Error).message });
            });
          }),
      ),
    ]);
    expect(reason).toBeInstanceOf(TaskTimeoutError);
    expect(results.get('slow')).toMatchObject({ status: 'failed', error: 'timed out after 0.05s' });
  });

  it('computes backoff as base x 2^(n-1), capped', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, 100, 500))).toEqual([100, 200, 400, 500]);
  });

  it('starts tasks in the order given and refuses duplicate ids before running anything', async () => {
    const order: string[] = [];
    const rec = (id: string) => async (): Promise<AttemptOutcome<string>> => {
      order.push(id);
      return { ok: true, value: id };
    };
    const results = await new RetryingTaskRunner<string>({ concurrency: 1, retries: 0 }).run([task('c', rec('c')), task('a', rec('a')), task('b', rec('b'))]);
    expect(order).toEqual(['c', 'a', 'b']);
    expect([...results.keys()]).toEqual(['c', 'a', 'b']);
    await expect(new RetryingTaskRunner<string>({ concurrency: 2, retries: 0 }).run([task('x', rec('x')), task('x', rec('x'))])).rejects.toThrow(
      'duplicate task id "x"',
    );
    expect(order).toEqual(['c', 'a', 'b']);
  });

  it('cancel() aborts running attempts, skips backoff waits and leaves unstarted tasks cancelled', async () => {
    const scheduler = new RetryingTaskRunner<string>({ concurrency: 1, retries: 5, backoffBaseMs: 60_000 });
    const started = Date.now();
    const pending = scheduler.run([task('retrying', async () => ({ ok: false, error: 'nope' })), task('waiting', ok('w'))]);
    await delay(30);
    scheduler.cancel('stop requested');
    const results = await pending;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(results.get('retrying')).toMatchObject({ status: 'cancelled', attempts: 1, error: 'stop requested' });
    expect(results.get('waiting')).toMatchObject({ status: 'cancelled', attempts: 0 });
  });

  it('stops and rethrows when a completion hook throws, instead of hanging', async () => {
    const scheduler = new RetryingTaskRunner<string>(
      { concurrency: 1, retries: 0 },
      {
        onTaskDone: (r) => {
          if (r.id === 'first') throw new Error('disk full');
        },
      },
    );
    await expect(scheduler.run([task('first', ok('1')), task('second', ok('2'))])).rejects.toThrow('disk full');
  });
});
