// Readers (bash scripts, watchers) must never see a half-written file: write a
// temp file in the same directory (same filesystem) and rename it into place.
// Durable writes also survive a crash of the machine: the data is flushed
// before the rename, and the directory (the rename itself) after it.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of the result; default 0o600 (swarm state is private). */
  mode?: number;
  /**
   * Flush the data before the rename and the directory after it, so the file
   * is on disk once the promise resolves. `syncDir` replaces the directory
   * flush (a caller batching many renames into one flush).
   */
  durable?: boolean | { syncDir: (dir: string) => Promise<void> };
}

/** Temp files of atomicWrite start with a dot and end in .tmp: readers skip them. */
export const isTempFile = (base: string): boolean => base.startsWith('.') && base.endsWith('.tmp');

/** Flushes a directory's entries (a rename or a new file in it) to disk. */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

export async function atomicWrite(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  // 'wx': never clobber an existing temp file, whoever made it.
  const h = await open(tmp, 'wx', options.mode ?? 0o600);
  try {
    try {
      await h.writeFile(data);
      if (options.durable) await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, path);
  } catch (err) {
    // A full volume fails the write: the partial temp file goes, freeing its space.
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  const durable = options.durable;
  if (durable) await (typeof durable === 'object' ? durable.syncDir(dir) : fsyncDir(dir));
}
