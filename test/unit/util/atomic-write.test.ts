import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite } from '../../../operator/util/atomic-write.js';

describe('atomicWrite', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp('/dev/shm/cfn-test-aw-');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes exact bytes, mode 0600, leaving no temp file', async () => {
    const text = 'line1\n$(rm -rf /) `id` "q" \'s\' é 🚀\n';
    await atomicWrite(join(dir, 'f.txt'), text);
    expect(await readFile(join(dir, 'f.txt'), 'utf8')).toBe(text);
    expect((await stat(join(dir, 'f.txt'))).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['f.txt']);
  });

  it('replaces an existing file whole; concurrent writers never leave a mix', async () => {
    const path = join(dir, 'x');
    await writeFile(path, 'old');
    const values = Array.from({ length: 20 }, (_, i) => String(i).repeat(10_000));
    await Promise.all(values.map((v) => atomicWrite(path, v)));
    expect(values).toContain(await readFile(path, 'utf8'));
    expect(await readdir(dir)).toEqual(['x']);
  });

  it('cleans its temp file when the rename fails', async () => {
    await expect(atomicWrite(join(dir, 'missing-dir', 'f'), 'x')).rejects.toThrow(/ENOENT/);
    // target is a directory: rename fails after the temp file exists
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'adir')));
    await writeFile(join(dir, 'adir', 'keep'), 'k');
    await expect(atomicWrite(join(dir, 'adir'), 'x')).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(['adir']);
  });
});
