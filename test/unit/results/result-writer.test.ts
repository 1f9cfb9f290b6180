// The result writer over a real directory sink: a full volume (a tiny tmpfs)
// and a read-only one (a tmpfs remounted ro) fail its puts for real; the
// records wait in memory, are retried and land once the volume has room or
// is writable again. Mounting needs root (the test machine runs as root).
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectorySink, DirectorySource } from '../../../operator/results/directory-sink.js';
import { ResultWriter } from '../../../operator/results/result-writer.js';
import { resultDir } from '../../../operator/results/stored-result.js';
import { record } from './records.js';
import type { StoredResult } from '../../../operator/results/stored-result.js';

const scope = { namespace: 'ns', name: 'sw', uid: '0b7e4d1a-0000-4000-8000-000000000002' };

/** Polls until `check` holds (each condition the test then asserts). */
async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The real sink, instrumented: which puts overlap, per index and overall. */
class WatchedSink extends DirectorySink {
  inFlight = new Map<number, number>();
  maxSameIndex = 0;
  maxOverall = 0;
  overall = 0;
  calls: Array<{ index: number; output: string }> = [];
  override async put(r: StoredResult): Promise<{ bytes: number }> {
    this.calls.push({ index: r.index, output: r.output });
    const n = (this.inFlight.get(r.index) ?? 0) + 1;
    this.inFlight.set(r.index, n);
    this.maxSameIndex = Math.max(this.maxSameIndex, n);
    this.maxOverall = Math.max(this.maxOverall, ++this.overall);
    try {
      return await super.put(r);
    } finally {
      this.inFlight.set(r.index, (this.inFlight.get(r.index) ?? 1) - 1);
      this.overall--;
    }
  }
}

jest.setTimeout(30_000);

describe('ResultWriter', () => {
  let root: string;
  let mounted = false;
  const writers: ResultWriter[] = [];
  /** A writer closed after the test, passed or not (no retry outlives it). */
  const writer = (...args: ConstructorParameters<typeof ResultWriter>): ResultWriter => {
    const w = new ResultWriter(...args);
    writers.push(w);
    return w;
  };
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'cfn-writer-'));
  });
  afterEach(async () => {
    for (const w of writers.splice(0)) w.close();
    if (mounted) execFileSync('umount', [root]);
    mounted = false;
    await rm(root, { recursive: true, force: true });
  });
  const mountTmpfs = (size: string): void => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', root]);
    mounted = true;
  };
  const sinkAt = () => new WatchedSink({ root, scope, type: 'persistentVolumeClaim', location: 'pvc://c/ns/sw/uid/' });
  const readBack = () => new DirectorySource(root, scope).read();

  it('returns at once, stores with bounded concurrency, never two puts of one index at once, and the latest record of an index wins', async () => {
    const sink = sinkAt();
    const stored: number[] = [];
    const w = writer(sink, { concurrency: 3, onStored: (r) => stored.push(r.index) });
    for (let i = 0; i < 40; i++) w.put(record(i % 10, { output: `v${Math.floor(i / 10)}` }));
    // Nothing stored synchronously: put only queued.
    expect(w.stats().stored).toBe(0);
    expect(w.stats().pending).toBe(10);
    expect(await w.drain(10_000)).toBe(true);
    expect(sink.maxSameIndex).toBe(1);
    expect(sink.maxOverall).toBeLessThanOrEqual(3);
    const { results } = await readBack();
    expect(results.map((r) => [r.index, r.output])).toEqual(Array.from({ length: 10 }, (_, i) => [i, 'v3']));
    expect(w.stats()).toEqual({ stored: 10, bytes: expect.any(Number), pending: 0 });
    // Every index reported stored once its final record landed.
    expect([...new Set(stored)].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    // A put of an index after an in-flight one went after it: the last put call of each index carried its last version.
    for (let i = 0; i < 10; i++) expect(sink.calls.filter((c) => c.index === i).at(-1)?.output).toBe('v3');
  });

  it('a full volume (ENOSPC on a tiny tmpfs): records wait in memory with the error in stats, and all land once there is room', async () => {
    mountTmpfs('256k');
    // Fill the volume (tmpfs counts whole pages: 20 records of 2 kB need 80 kB of it).
    const filler = join(root, 'filler');
    await writeFile(filler, Buffer.alloc(1024 * 1024)).catch((e: NodeJS.ErrnoException) => expect(e.code).toBe('ENOSPC'));
    const sink = sinkAt();
    const changes: string[] = [];
    const w = writer(sink, { retryBaseMs: 20, retryMaxMs: 100, onChange: () => changes.push(w.stats().lastError ?? 'ok') });
    for (let i = 0; i < 20; i++) w.put(record(i, { output: 'y'.repeat(2000) }));
    await until('a failed put', () => w.stats().lastError !== undefined);
    expect(w.stats().lastError).toMatch(/ENOSPC/);
    expect(await w.drain(300)).toBe(false);
    expect(w.stats()).toMatchObject({ stored: 0, pending: 20 });
    expect(w.pendingIndexes()).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // No half-written record or temp file stays behind on the full volume.
    const dir = join(root, resultDir(scope));
    expect((await readdir(dir).catch(() => [])).filter((n) => n !== '.')).toEqual([]);
    await rm(filler);
    expect(await w.drain(10_000)).toBe(true);
    expect(w.stats()).toEqual({ stored: 20, bytes: expect.any(Number), pending: 0 });
    expect(changes.at(-1)).toBe('ok');
    const { results, unreadable } = await readBack();
    expect(unreadable).toEqual([]);
    expect(results.map((r) => r.index)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(results.every((r) => r.output === 'y'.repeat(2000))).toBe(true);
  });

  it('a read-only volume made writable later: retried with backoff until stored; a newer record of an index put meanwhile wins', async () => {
    mountTmpfs('1m');
    // The scope's directories exist, then the volume goes read-only.
    const before = writer(sinkAt());
    before.put(record(9));
    expect(await before.drain(5000)).toBe(true);
    execFileSync('mount', ['-o', 'remount,ro', root]);
    const sink = sinkAt();
    const w = writer(sink, { retryBaseMs: 20, retryMaxMs: 80 });
    w.put(record(0, { output: 'first' }));
    w.put(record(1));
    await until('two failed attempts', () => sink.calls.length >= 4);
    expect(w.stats()).toMatchObject({ stored: 0, pending: 2, lastError: expect.stringMatching(/EROFS|read-only/i) });
    w.put(record(0, { output: 'second' }));
    expect(w.stats().pending).toBe(2);
    execFileSync('mount', ['-o', 'remount,rw', root]);
    expect(await w.drain(10_000)).toBe(true);
    expect(w.stats()).toEqual({ stored: 2, bytes: expect.any(Number), pending: 0 });
    const { results } = await readBack();
    expect(results.map((r) => [r.index, r.output])).toEqual([
      [0, 'second'],
      [1, 'out 1\n'],
      [9, 'out 9\n'],
    ]);
  });

  it('close() stops the retries and the reports: the records not stored stay pending', async () => {
    mountTmpfs('1m');
    execFileSync('mount', ['-o', 'remount,ro', root]);
    const sink = sinkAt();
    let changes = 0;
    const w = writer(sink, { retryBaseMs: 10, retryMaxMs: 20, onChange: () => changes++ });
    w.put(record(0));
    await until('two failed attempts', () => sink.calls.length >= 2);
    w.close();
    const calls = sink.calls.length;
    const seen = changes;
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.calls.length).toBe(calls);
    expect(changes).toBe(seen);
    expect(w.pendingIndexes()).toEqual([0]);
    expect(() => w.put(record(1))).toThrow(/closed/);
    execFileSync('mount', ['-o', 'remount,rw', root]);
  });

  it('counts the records an earlier coordinator stored (known) with its own, each index once', async () => {
    const first = writer(sinkAt());
    for (const i of [0, 1, 2]) first.put(record(i));
    expect(await first.drain(5000)).toBe(true);
    const sink = sinkAt();
    const known = await sink.inventory();
    const second = writer(sink, { known });
    expect(second.stats()).toEqual(first.stats());
    second.put(record(2, { output: 'again' }));
    second.put(record(3));
    expect(await second.drain(5000)).toBe(true);
    expect(second.stats().stored).toBe(4);
    const { results } = await readBack();
    expect(second.stats().bytes).toBe(results.reduce((n, r) => n + Buffer.byteLength(`${JSON.stringify(r)}\n`), 0));
    await rmdir(root).catch(() => undefined);
  });
});
