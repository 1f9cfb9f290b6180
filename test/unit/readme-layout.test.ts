// The README's layout table names every folder of operator/ (nested ones as
// `name/` too), so a new folder cannot go unexplained.
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

function folders(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => [join(dir, d.name), ...folders(join(dir, d.name))]);
}

describe('README layout table', () => {
  it('lists every folder of operator/', () => {
    const row = readFileSync(join(root, 'README.md'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('| `operator/` |'));
    expect(row).toBeDefined();
    const missing = folders(join(root, 'operator'))
      .map((d) => relative(join(root, 'operator'), d).split('/').pop()!)
      .filter((name) => !row!.includes(`\`${name}/\``));
    expect(missing).toEqual([]);
  });
});
