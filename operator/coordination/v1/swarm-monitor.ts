// Counters and durations of a swarm's agents, for status and metrics. Pure
// bookkeeping: no timers, so nothing to stop.
export interface MonitorSnapshot {
  started: number;
  completed: number;
  failed: number;
  retries: number;
  timeouts: number;
  running: number;
  durationMs: { count: number; min: number; max: number; mean: number; p50: number; p95: number };
  elapsedMs: number;
  throughputAgentsPerSec: number;
}

export class SwarmMonitor {
  private startedAt: number | undefined;
  private lastAt: number | undefined;
  private started = 0;
  private completed = 0;
  private failed = 0;
  private retries = 0;
  private timeouts = 0;
  private running = 0;
  private durations: number[] = [];

  constructor(private readonly now: () => number = () => performance.now()) {}

  begin(): void {
    this.startedAt ??= this.now();
  }

  agentStarted(): void {
    this.begin();
    this.started += 1;
    this.running += 1;
  }

  agentRetried(timedOut: boolean): void {
    this.retries += 1;
    if (timedOut) this.timeouts += 1;
  }

  agentTimedOut(): void {
    this.timeouts += 1;
  }

  agentFinished(ok: boolean, durationMs: number): void {
    this.running = Math.max(0, this.running - 1);
    if (ok) this.completed += 1;
    else this.failed += 1;
    this.durations.push(durationMs);
    this.lastAt = this.now();
  }

  snapshot(): MonitorSnapshot {
    const sorted = [...this.durations].sort((a, b) => a - b);
    const pick = (q: number): number => (sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) : 0);
    const sum = sorted.reduce((a, b) => a + b, 0);
    const elapsedMs = this.startedAt === undefined ? 0 : (this.running > 0 ? this.now() : (this.lastAt ?? this.now())) - this.startedAt;
    const finished = this.completed + this.failed;
    return {
      started: this.started,
      completed: this.completed,
      failed: this.failed,
      retries: this.retries,
      timeouts: this.timeouts,
      running: this.running,
      durationMs: {
        count: sorted.length,
        min: sorted[0] ?? 0,
        max: sorted[sorted.length - 1] ?? 0,
        mean: sorted.length ? sum / sorted.length : 0,
        p50: pick(0.5),
        p95: pick(0.95),
      },
      elapsedMs,
      throughputAgentsPerSec: elapsedMs > 0 ? (finished * 1000) / elapsedMs : 0,
    };
  }
}
