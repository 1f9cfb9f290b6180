// The directory sink on a real tmpfs: one file per agent index, written
// atomically, read back in index order; what does not parse is counted.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectorySink, DirectorySource } from '../../../operator/results/directory-sink.js';
import { resultDir } from '../../../operator/results/stored-result.js';
import { record } from './records.js';

const scope = { namespace: 'team-a', name: 'lint', uid: '6f1c2a8e-0000-4000-8000-000000000001' };

describe('DirectorySink and DirectorySource', () => {
  let root: string;
  let dir: string;
  beforeEach(async () => {
    root = await mkdtemp('/dev/shm/cfn-test-sink-');
    dir = join(root, resultDir(scope));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const sink = () => new DirectorySink({ root, scope, type: 'persistentVolumeClaim', location: 'pvc://lint-results/team-a/lint/uid/' });

  it('stores one file per index at <namespace>/<name>/<uid>/<index>.json, byte counts true, read back in index order', async () => {
    const s = sink();
    const hostile = 'a "quote" $(rm -rf /) \n\t\u0000 é 🚀';
    const sizes = await Promise.all([5, 0, 12, 3].map((i) => s.put(record(i, i === 3 ? { output: hostile, outputBytes: Buffer.byteLength(hostile) } : {}))));
    expect((await readdir(dir)).sort()).toEqual(['0.json', '12.json', '3.json', '5.json']);
    const onDisk = await readFile(join(dir, '5.json'));
    expect(sizes[0]!.bytes).toBe(onDisk.length);
    const { results, unreadable } = await new DirectorySource(root, scope).read();
    expect(unreadable).toEqual([]);
    expect(results.map((r) => r.index)).toEqual([0, 3, 5, 12]);
    expect(results[1]!.output).toBe(hostile);
    expect(results[0]).toEqual(record(0, { storedAt: results[0]!.storedAt }));
  });

  it('a later put of an index replaces the earlier one: exactly one record survives', async () => {
    const s = sink();
    await s.put(record(7, { status: 'failed', exitCode: 1, error: 'exit code 1', output: '' }));
    await s.put(record(7, { output: 'second', outputBytes: 6, pod: 'lint-v2-2' }));
    expect(await readdir(dir)).toEqual(['7.json']);
    const { results } = await new DirectorySource(root, scope).read();
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ index: 7, status: 'completed', output: 'second', pod: 'lint-v2-2' });
    expect(await s.inventory()).toEqual([{ index: 7, bytes: (await readFile(join(dir, '7.json'))).length }]);
  });

  it('counts what does not parse as unreadable with the reason, and ignores temp files', async () => {
    await sink().put(record(1));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, '2.json'), '{"index": 2, "trunc');
    await writeFile(join(dir, '3.json'), JSON.stringify({ ...record(3), status: 'great' }));
    await writeFile(join(dir, '4.json'), JSON.stringify(record(9)));
    await writeFile(join(dir, 'notes.txt'), 'hello');
    await writeFile(join(dir, '.5.json.1.abcdef.tmp'), '{"half');
    const { results, unreadable } = await new DirectorySource(root, scope).read();
    expect(results.map((r) => r.index)).toEqual([1]);
    expect(unreadable.map((u) => u.key)).toEqual(['2.json', '3.json', '4.json', 'notes.txt']);
    expect(unreadable[0]!.reason).toMatch(/^not JSON/);
    expect(unreadable[1]!.reason).toMatch(/^not a result record: status/);
    expect(unreadable[2]!.reason).toBe('holds index 9, not 4');
    expect(unreadable[3]!.reason).toMatch(/not a record name/);
    // The inventory counts record names only, and removes the temp file a dead writer left.
    expect((await sink().inventory()).map((r) => r.index)).toEqual([1, 2, 3, 4]);
    expect((await readdir(dir)).sort()).toEqual(['1.json', '2.json', '3.json', '4.json', 'notes.txt']);
  });

  it("a shard's inventory: its range's records only, and only its range's temp files removed (another shard may be writing on a shared claim)", async () => {
    for (const i of [1, 4, 5, 8]) await sink().put(record(i));
    await writeFile(join(dir, '.4.json.1.abcdef.tmp'), '{"half');
    await writeFile(join(dir, '.8.json.2.abcdef.tmp'), '{"half');
    expect((await sink().inventory({ start: 3, end: 6 })).map((r) => r.index)).toEqual([4, 5]);
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual(['.8.json.2.abcdef.tmp']);
  });

  it('a scope not stored yet reads as empty; a scope part that is no directory name is refused', async () => {
    expect(await new DirectorySource(root, scope).read()).toEqual({ results: [], unreadable: [] });
    expect(await sink().inventory()).toEqual([]);
    expect(() => new DirectorySink({ root, scope: { ...scope, name: '..' }, type: 'emptyDir', location: 'x' })).toThrow(
      /scope name "\.\." is not a valid directory name/,
    );
    expect(() => new DirectorySource(root, { ...scope, uid: 'a/b' })).toThrow(/scope uid/);
  });

  it('many concurrent puts (batched directory flushes) all land whole, no temp file left', async () => {
    const s = sink();
    await Promise.all(Array.from({ length: 300 }, (_, i) => s.put(record(i, { output: 'x'.repeat(i * 10) }))));
    const names = await readdir(dir);
    expect(names).toHaveLength(300);
    expect(names.every((n) => /^\d+\.json$/.test(n))).toBe(true);
    const { results, unreadable } = await new DirectorySource(root, scope).read();
    expect(unreadable).toEqual([]);
    expect(results.map((r) => r.output.length)).toEqual(Array.from({ length: 300 }, (_, i) => i * 10));
  });
});
