// Live progress on a TTY: one redrawn line on stderr (stdout stays for results).
import type { Writable } from 'node:stream';

export interface ProgressCounts {
  total: number;
  completed: number;
  failed: number;
  elapsedMs: number;
}

export function formatProgress(c: ProgressCounts, width = 30): string {
  const done = c.completed + c.failed;
  const ratio = c.total > 0 ? Math.min(1, done / c.total) : 0;
  const filled = Math.round(ratio * width);
  const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
  const rate = c.elapsedMs > 0 ? done / (c.elapsedMs / 1000) : 0;
  const pct = (ratio * 100).toFixed(0).padStart(3);
  return `[${bar}] ${pct}% ${done}/${c.total} done, ${c.completed} ok, ${c.failed} failed, ${rate.toFixed(1)} agents/s, ${(c.elapsedMs / 1000).toFixed(1)}s`;
}

/** Redraws at most every `intervalMs`; `finish()` draws the final state and ends the line. */
export class ProgressBar {
  private last = 0;
  private drawn = false;

  constructor(
    private readonly stream: Writable,
    private readonly intervalMs = 100,
  ) {}

  update(c: ProgressCounts, force = false): void {
    const now = Date.now();
    if (!force && now - this.last < this.intervalMs) return;
    this.last = now;
    this.stream.write(`\r\x1b[2K${formatProgress(c)}`);
    this.drawn = true;
  }

  finish(c: ProgressCounts): void {
    this.update(c, true);
    if (this.drawn) this.stream.write('\n');
  }
}
