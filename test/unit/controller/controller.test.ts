// The Controller over a real WorkQueue: at most `workers` reconciles at once,
// never two of the same key, retryable errors retried, permanent ones not.
import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Controller } from '../../../operator/controller/controller.js';
import { ItemExponentialRateLimiter } from '../../../operator/controller/rate-limiter.js';
import { PermanentError, RetryLaterError } from '../../../operator/k8s/errors.js';

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
    const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => { for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>); cb(); } });
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
    expect(lines).toContainEqual(expect.objectContaining({ namespace: 'ns', name: 'broken', msg: 'reconcile failed permanently', level: 50, err: 'PermanentError: invalid' }));
  });
});
