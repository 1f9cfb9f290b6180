// Readers (bash scripts, watchers) must never see a half-written file: write a
// temp file in the same directory (same filesystem) and rename it into place.
import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of the result; default 0o600 (swarm state is private). */
  mode?: number;
}

export async function atomicWrite(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  // 'wx': never clobber an existing temp file, whoever made it.
  await writeFile(tmp, data, { mode: options.mode ?? 0o600, flag: 'wx' });
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
