// The Controller over a real WorkQueue: at most `workers` reconciles at once,
// never two of the same key, retryable errors retried, permanent ones not.
import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Controller } from '../../../operator/controller/controller.js';
import { ItemExponentialRateLimiter } from '../../../operator/controller/rate-limiter.js';
import { createOperatorMetrics } from '../../../operator/observability/metrics.js';
import { KubeApiError, PermanentError, RetryLaterError } from '../../../operator/k8s/errors.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Controller', () => {
  it('runs at most `workers` reconciles at once and never two of one key', async () => {
    let running = 0;
    let peak = 0;
    const perKey = new Map<string, number>();
    let keyOverlap = false;
    const done: string[] = [];
    const c = new Controller({
      name: 'test',
      workers: 3,
      rateLimiter: new ItemExponentialRateLimiter(1, 1),
      reconcile: async (key) => {
        running++;
        peak = Math.max(peak, running);
        perKey.set(key, (perKey.get(key) ?? 0) + 1);
        if ((perKey.get(key) ?? 0) > 1) keyOverlap = true;
        await tick(20);
        perKey.set(key, (perKey.get(key) ?? 1) - 1);
        running--;
        done.push(key);
      },
    });
    c.start();
    for (let i = 0; i < 12; i++) c.enqueue(`ns/s${i % 6}`);
    await tick(5);
    // Re-adds of keys being reconciled: queued after, never run alongside.
    for (let i = 0; i < 6; i++) c.enqueue(`ns/s${i}`);
    await c.idle();
    await c.stop();
    expect(peak).toBe(3);
    expect(keyOverlap).toBe(false);
    expect(new Set(done)).toEqual(new Set(['ns/s0', 'ns/s1', 'ns/s2', 'ns/s3', 'ns/s4', 'ns/s5']));
  });

  it('retries a retryable error and gives up on a permanent one, logging JSON lines that carry namespace and name', async () => {
    const calls = new Map<string, number>();
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const c = new Controller({
      name: 'test',
      workers: 2,
      logger: pino({ level: 'info' }, sink),
      rateLimiter: new ItemExponentialRateLimiter(1, 4),
      reconcile: async (key) => {
        const n = (calls.get(key) ?? 0) + 1;
        calls.set(key, n);
        if (key === 'ns/flaky' && n < 3) throw new RetryLaterError('conflict');
        if (key === 'ns/broken') throw new PermanentError('invalid');
      },
    });
    c.start();
    c.enqueue('ns/flaky');
    c.enqueue('ns/broken');
    for (let i = 0; i < 100 && (calls.get('ns/flaky') ?? 0) < 3; i++) await tick(5);
    await c.idle();
    await tick(30);
    await c.stop();
    expect(calls.get('ns/flaky')).toBe(3);
    expect(calls.get('ns/broken')).toBe(1);
    expect(lines).toContainEqual(expect.objectContaining({ namespace: 'ns', name: 'flaky', msg: 'reconcile failed, retrying', level: 40 }));
    expect(lines).toContainEqual(
      expect.objectContaining({ namespace: 'ns', name: 'broken', msg: 'reconcile failed permanently', level: 50, err: 'PermanentError: invalid' }),
    );
  });

  it('a 409 conflict is retried on fresh state and counted as a requeue, not as a reconcile error', async () => {
    const metrics = createOperatorMetrics();
    let n = 0;
    const c = new Controller({
      name: 'test',
      workers: 1,
      metrics,
      rateLimiter: new ItemExponentialRateLimiter(1, 4),
      reconcile: async () => {
        n++;
        if (n < 3)
          throw new KubeApiError(
            409,
            'Conflict',
            'the object has been modified; please apply your changes to the latest version and try again',
            'PATCH',
            '/apis/swarm.cfn.dev/v1alpha1/namespaces/ns/swarms/raced/status',
          );
      },
    });
    c.start();
    c.enqueue('ns/raced');
    for (let i = 0; i < 100 && n < 3; i++) await tick(5);
    await c.idle();
    await c.stop();
    expect(n).toBe(3);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/controller_runtime_reconcile_total\{controller="test",result="requeue"\} 2/);
    expect(text).toMatch(/controller_runtime_reconcile_total\{controller="test",result="success"\} 1/);
    expect(text).not.toMatch(/controller_runtime_reconcile_errors_total\{controller="test"\} [1-9]/);
  });

  it('a stopped controller is stopped for good: start() again is refused, and keys added later are never reconciled', async () => {
    const seen: string[] = [];
    const c = new Controller({ name: 'test', workers: 2, reconcile: async (key) => void seen.push(key) });
    c.start();
    c.enqueue('ns/before');
    await c.idle();
    await c.stop();
    expect(() => c.start()).toThrow(/stopped for good/);
    c.enqueue('ns/after');
    await tick(30);
    expect(seen).toEqual(['ns/before']);
    expect(c.queue.length).toBe(0);
  });

  it('stop() lets reconciles in flight finish and starts none of the keys still waiting', async () => {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const c = new Controller({
      name: 'test',
      workers: 1,
      reconcile: async (key) => {
        seen.push(key);
        if (key === 'ns/first') await gate;
      },
    });
    c.start();
    c.enqueue('ns/first');
    await tick(5);
    for (let i = 0; i < 5; i++) c.enqueue(`ns/waiting${i}`);
    expect(c.queue.length).toBe(5);
    const stopped = c.stop();
    expect(c.queue.length).toBe(0);
    release();
    await stopped;
    expect(seen).toEqual(['ns/first']);
  });

  it('start() twice runs one set of workers', async () => {
    let running = 0;
    let peak = 0;
    const c = new Controller({
      name: 'test',
      workers: 2,
      reconcile: async () => {
        peak = Math.max(peak, ++running);
        await tick(10);
        running--;
      },
    });
    c.start();
    c.start();
    for (let i = 0; i < 8; i++) c.enqueue(`ns/k${i}`);
    await c.idle();
    await c.stop();
    expect(peak).toBe(2);
  });

  it('exports its queue metrics from the start (0, not absent) and the longest-running reconcile while one runs', async () => {
    const metrics = createOperatorMetrics({ defaultMetrics: false });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const c = new Controller({ name: 'test', workers: 1, metrics, reconcile: () => gate });
    const value = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values.find((v) => v.labels.name === 'test')?.value;
    expect(await value('workqueue_depth')).toBe(0);
    expect(await value('workqueue_longest_running_processor_seconds')).toBe(0);
    const reconciles = (await metrics.registry.getSingleMetric('controller_runtime_reconcile_total')!.get()).values.filter(
      (v) => v.labels.controller === 'test',
    );
    expect(reconciles.map((v) => `${v.labels.result}=${v.value}`).sort()).toEqual(['error=0', 'requeue_after=0', 'success=0']);
    expect((await metrics.registry.getSingleMetric('controller_runtime_reconcile_errors_total')!.get()).values).toEqual([
      { labels: { controller: 'test' }, value: 0 },
    ]);
    c.start();
    c.enqueue('ns/slow');
    await tick(60);
    expect(await value('workqueue_longest_running_processor_seconds')).toBeGreaterThanOrEqual(0.05);
    release();
    await c.idle();
    await c.stop();
    expect(await value('workqueue_longest_running_processor_seconds')).toBe(0);
  });
});
