import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { swarm } from '../../../operator/api/swarm.js';

const DIR = join(process.cwd(), 'config/samples');

describe('config/samples', () => {
  const files = readdirSync(DIR).filter((f) => f.startsWith('swarm-') && f.endsWith('.yaml'));

  it('has samples', () => expect(files.length).toBeGreaterThanOrEqual(3));

  it.each(files)('%s parses with the Swarm schema', (file) => {
    const doc = parse(readFileSync(join(DIR, file), 'utf8')) as object;
    const r = swarm.safeParse(doc);
    expect(r.error?.issues ?? []).toEqual([]);
  });
});
