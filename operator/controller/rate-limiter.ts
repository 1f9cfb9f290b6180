// Rate limiters of a work queue, after client-go's workqueue: a per-item
// exponential backoff combined with an overall token bucket; the larger delay wins.

export interface RateLimiter {
  /** Delay before the item may be processed again, counting this failure. */
  when(item: string): number;
  /** Forget the item's failures (after a success). */
  forget(item: string): void;
  failures(item: string): number;
}

export class ItemExponentialRateLimiter implements RateLimiter {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly baseDelayMs = 5,
    private readonly maxDelayMs = 1000_000,
  ) {}

  when(item: string): number {
    const n = this.counts.get(item) ?? 0;
    this.counts.set(item, n + 1);
    return Math.min(this.baseDelayMs * 2 ** n, this.maxDelayMs);
  }

  forget(item: string): void {
    this.counts.delete(item);
  }

  failures(item: string): number {
    return this.counts.get(item) ?? 0;
  }
}

/** Overall limit: `qps` tokens per second, up to `burst` saved up. */
export class TokenBucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly qps = 10,
    private readonly burst = 100,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  when(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.qps) / 1000);
    this.last = t;
    this.tokens -= 1;
    // A negative balance is a reservation: wait until it is paid back.
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.qps;
  }

  forget(): void {}

  failures(): number {
    return 0;
  }
}

export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(item: string): number {
    return Math.max(...this.limiters.map((l) => l.when(item)));
  }

  forget(item: string): void {
    for (const l of this.limiters) l.forget(item);
  }

  failures(item: string): number {
    return Math.max(...this.limiters.map((l) => l.failures(item)));
  }
}

export const defaultControllerRateLimiter = (): RateLimiter =>
  new MaxOfRateLimiter(new ItemExponentialRateLimiter(5, 1000_000), new TokenBucketRateLimiter(10, 100));
