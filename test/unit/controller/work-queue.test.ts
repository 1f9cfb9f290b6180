import { describe, expect, it } from '@jest/globals';
import { ItemExponentialRateLimiter, MaxOfRateLimiter, TokenBucketRateLimiter } from '../../../operator/controller/rate-limiter.js';
import { WorkQueue } from '../../../operator/controller/work-queue.js';

const noLimit = new ItemExponentialRateLimiter(1, 1);

describe('WorkQueue', () => {
  it('deduplicates a key waiting in the queue', async () => {
    const q = new WorkQueue(noLimit);
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    q.shutDown();
  });

  it('never hands a key to two workers; a re-add while processing is queued after done()', async () => {
    const q = new WorkQueue(noLimit);
    q.add('a');
    const first = await q.get();
    q.add('a');
    expect(q.length).toBe(0);
    let second: string | undefined;
    const pending = q.get().then((k) => (second = k));
    await new Promise((r) => setTimeout(r, 10));
    expect(second).toBeUndefined();
    q.done(first!);
    await pending;
    expect(second).toBe('a');
    q.shutDown();
  });

  it('wakes a waiting worker on add and releases waiters on shutdown', async () => {
    const q = new WorkQueue(noLimit);
    const w1 = q.get();
    const w2 = q.get();
    q.add('x');
    expect(await w1).toBe('x');
    q.shutDown();
    expect(await w2).toBeUndefined();
    q.add('y');
    expect(await q.get()).toBeUndefined();
  });

  it('shutDown drops the keys waiting and those added or re-added later, for good', async () => {
    const depth: number[] = [];
    const q = new WorkQueue(noLimit, { depth: (d) => depth.push(d) });
    q.add('busy');
    const busy = await q.get();
    q.add('a');
    q.add('b');
    q.add('busy');
    q.addAfter('later', 5);
    q.shutDown();
    expect(q.length).toBe(0);
    expect(depth.at(-1)).toBe(0);
    q.done(busy!);
    q.add('c');
    await new Promise((r) => setTimeout(r, 20));
    expect(await q.get()).toBeUndefined();
    expect(q.length).toBe(0);
  });

  it('reports how long the longest-held key has been with its worker, 0 when none is', async () => {
    const q = new WorkQueue(noLimit);
    expect(q.longestRunningSeconds()).toBe(0);
    q.add('slow');
    const slow = await q.get();
    await new Promise((r) => setTimeout(r, 60));
    q.add('fast');
    const fast = await q.get();
    expect(q.longestRunningSeconds()).toBeGreaterThanOrEqual(0.05);
    q.done(slow!);
    expect(q.longestRunningSeconds()).toBeLessThan(0.05);
    q.done(fast!);
    expect(q.longestRunningSeconds()).toBe(0);
    q.shutDown();
  });

  it('addAfter keeps the earliest pending time', async () => {
    const q = new WorkQueue(noLimit);
    q.addAfter('k', 10_000);
    q.addAfter('k', 5);
    const t0 = Date.now();
    expect(await q.get()).toBe('k');
    expect(Date.now() - t0).toBeLessThan(5000);
    q.shutDown();
  });

  it('reports depth, adds and retries through hooks', async () => {
    const seen = { adds: 0, retries: 0, depth: [] as number[] };
    const q = new WorkQueue(new ItemExponentialRateLimiter(1, 1), {
      added: () => seen.adds++,
      retried: () => seen.retries++,
      depth: (d) => seen.depth.push(d),
    });
    q.add('a');
    q.add('b');
    const k = await q.get();
    q.addRateLimited(k!);
    q.done(k!);
    expect(seen.adds).toBe(2);
    expect(seen.retries).toBe(1);
    expect(seen.depth).toContain(2);
    q.shutDown();
  });
});

describe('rate limiters', () => {
  it('backs off per item exponentially up to a cap, and forgets', () => {
    const l = new ItemExponentialRateLimiter(5, 30);
    expect([l.when('a'), l.when('a'), l.when('a'), l.when('a'), l.when('b')]).toEqual([5, 10, 20, 30, 5]);
    expect(l.failures('a')).toBe(4);
    l.forget('a');
    expect(l.when('a')).toBe(5);
  });

  it('limits overall rate with a token bucket after the burst', () => {
    let now = 0;
    const l = new TokenBucketRateLimiter(10, 2, () => now);
    expect(l.when()).toBe(0);
    expect(l.when()).toBe(0);
    expect(l.when()).toBeCloseTo(100);
    now = 1000;
    expect(l.when()).toBe(0);
  });

  it('takes the larger delay of its limiters', () => {
    const now = 0;
    const l = new MaxOfRateLimiter(new ItemExponentialRateLimiter(5, 1000), new TokenBucketRateLimiter(1, 1, () => now));
    expect(l.when('a')).toBe(5);
    expect(l.when('b')).toBeCloseTo(1000);
  });
});
