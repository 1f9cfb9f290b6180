// The library API the package's "exports" offer (dist/operator/index.js is
// compiled from operator/index.ts): both coordinators, the factory and the
// version detection, usable without reaching into internal paths.
import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as api from '../../operator/index.js';

describe('package exports', () => {
  it('are exactly the documented names (a removal or an addition is a decision, not an accident)', () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        'BashCoordinator',
        'CoordinatorFactory',
        'CoordinatorNotStartedError',
        'CoordinatorStartError',
        'CoordinatorUnavailableError',
        'DEFAULT_FALLBACK_TIMEOUT_MS',
        'DEFAULT_MEMORY_PATH',
        'DEFAULT_SHM_PATH',
        'DESIGN_MEMORY_PATH',
        'ENGINE_EXIT',
        'EngineError',
        'EventBus',
        'InvalidSpecError',
        'InvalidVersionSettingError',
        'ResponseCheckpointStore',
        'ResultCollector',
        'SwarmCoordinator',
        'agentResponseSchema',
        'assertValidId',
        'atomicWrite',
        'busMessageSchema',
        'compressRanges',
        'createLogger',
        'detectVersion',
        'expandRanges',
        'generateId',
        'healthFileSchema',
        'isValidId',
        'rolloutBucket',
        'runCli',
        'splitShellWords',
        'statusFileSchema',
        'validateSpec',
        'writeObjective',
      ].sort(),
    );
  });

  it('offer CoordinatorFactory, detectVersion and both coordinators', () => {
    expect(typeof api.CoordinatorFactory.create).toBe('function');
    expect(new api.SwarmCoordinator().version).toBe('v1');
    expect(new api.BashCoordinator().version).toBe('v2');
    expect(api.detectVersion({ id: 'swarm-1', env: { COORDINATION_VERSION: 'v1' } })).toMatchObject({ version: 'v1' });
  });

  it("rolloutBucket is sha256(id)'s first 4 bytes, big-endian, mod 100: the rollout routes by it", () => {
    const expected = (id: string) => createHash('sha256').update(id, 'utf8').digest().readUInt32BE(0) % 100;
    const ids = Array.from({ length: 200 }, (_, i) => `swarm-${i}`);
    for (const id of ids) expect(api.rolloutBucket(id)).toBe(expected(id));
    // Spread over the buckets, not a constant.
    expect(new Set(ids.map((id) => api.rolloutBucket(id))).size).toBeGreaterThan(50);
    const pct = 30;
    const routed = ids.filter((id) => api.detectVersion({ id, env: { V2_ROLLOUT_PERCENTAGE: String(pct) } }).version === 'v2');
    expect(routed).toEqual(ids.filter((id) => expected(id) < pct));
  });

  it('map the package entry point to the compiled index', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      exports: Record<string, { import: string; types: string }>;
    };
    expect(pkg.exports['.']).toEqual({ types: './dist/operator/index.d.ts', import: './dist/operator/index.js' });
  });
});
