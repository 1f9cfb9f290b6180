// `cfn run --results FILE`: each agent's result as one JSON line (the record
// of docs/results.md), appended as it arrives, so a run cut short keeps what
// it delivered; flushed to disk when the run ends.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { StoredResult } from '../results/stored-result.js';

export class ResultsFile {
  private chain: Promise<void> = Promise.resolve();
  private written = 0;
  /** Bytes of the whole lines written: a failed write is cut back to it. */
  private size = 0;
  private failed = 0;
  private error: string | undefined;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  /** Creates or truncates FILE; rejects (with the reason) when it cannot be written. */
  static async open(path: string): Promise<ResultsFile> {
    return new ResultsFile(path, await open(path, 'w', 0o644));
  }

  /** Appends the record's line after the ones before it; never blocks the run. */
  append(record: StoredResult): void {
    const line = `${JSON.stringify(record)}\n`;
    this.chain = this.chain.then(async () => {
      // After a failure (a full volume) nothing more goes in: the lines stay in arrival order.
      if (this.error !== undefined) {
        this.failed++;
        return;
      }
      try {
        await this.handle.appendFile(line);
        this.written++;
        this.size += Buffer.byteLength(line);
      } catch (err) {
        this.failed++;
        this.error = (err as Error).message;
        // No partial line stays: the file holds whole records only.
        await this.handle.truncate(this.size).catch(() => undefined);
      }
    });
  }

  /** Waits for every line, flushes and closes: how many were written, how many not and why. */
  async close(): Promise<{ written: number; failed: number; error?: string }> {
    await this.chain;
    try {
      await this.handle.sync();
    } catch (err) {
      this.error ??= (err as Error).message;
    }
    await this.handle.close().catch(() => undefined);
    return { written: this.written, failed: this.failed, ...(this.error !== undefined ? { error: this.error } : {}) };
  }
}
