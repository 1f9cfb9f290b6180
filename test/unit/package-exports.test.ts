// The library API the package's "exports" offer (dist/operator/index.js is
// compiled from operator/index.ts): both coordinators, the factory and the
// version detection, usable without reaching into internal paths.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import * as api from '../../operator/index.js';

describe('package exports', () => {
  it('offer CoordinatorFactory, detectVersion and both coordinators', () => {
    expect(typeof api.CoordinatorFactory.create).toBe('function');
    expect(new api.SwarmCoordinator().version).toBe('v1');
    expect(new api.BashCoordinator().version).toBe('v2');
    expect(api.detectVersion({ id: 'swarm-1', env: { COORDINATION_VERSION: 'v1' } })).toMatchObject({ version: 'v1' });
    expect(api.rolloutBucket('swarm-1')).toBe(api.rolloutBucket('swarm-1'));
  });

  it('map the package entry point to the compiled index', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { exports: Record<string, { import: string; types: string }> };
    expect(pkg.exports['.']).toEqual({ types: './dist/operator/index.d.ts', import: './dist/operator/index.js' });
  });
});
