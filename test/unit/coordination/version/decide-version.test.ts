import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FLAT_MAX_AGENTS, swarm } from '../../../../operator/api/swarm.js';
import type { Swarm } from '../../../../operator/api/swarm.js';
import { ConfigError } from '../../../../operator/config/config-error.js';
import { loadPerformanceLimits } from '../../../../operator/config/performance-limits.js';
import {
  decideSwarmVersion,
  detectVersion,
  InvalidVersionSettingError,
  resolveSwarmTopology,
  resolveTopology,
} from '../../../../operator/coordination/version/decide-version.js';
import { rolloutBucket } from '../../../../operator/coordination/version/rollout-bucket.js';
import { v2Preflight } from '../../../../operator/coordination/version/v2-preflight.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const loader = join(here, '..', 'v1', 'fixtures', 'ts-loader.mjs');

const pass = () => ({ ok: true, reason: 'fine' });
const fail = () => ({ ok: false, reason: '/dev/shm/cfn not writable' });

describe('detectVersion priority', () => {
  it('COORDINATION_VERSION wins over everything', () => {
    expect(detectVersion({ id: 's', env: { COORDINATION_VERSION: 'v2', V2_ROLLOUT_PERCENTAGE: '0' }, coordination: { version: 'v1' } })).toEqual({
      version: 'v2',
      reason: 'COORDINATION_VERSION=v2',
    });
    expect(detectVersion({ id: 's', env: { COORDINATION_VERSION: 'v1' }, coordination: { version: 'v2' } }).version).toBe('v1');
  });

  it('then the config file version', () => {
    expect(detectVersion({ id: 's', env: { V2_ROLLOUT_PERCENTAGE: '100' }, coordination: { version: 'v1' }, configFile: 'claude-flow.config.json' })).toEqual({
      version: 'v1',
      reason: 'coordination.version=v1 (claude-flow.config.json)',
    });
  });

  it('then the rollout: env before config, by bucket', () => {
    const id = 'swarm-abc';
    const bucket = rolloutBucket(id);
    expect(detectVersion({ id, env: { V2_ROLLOUT_PERCENTAGE: String(bucket + 1) }, coordination: { v2RolloutPercentage: 0 } })).toEqual({
      version: 'v2',
      reason: `rollout ${bucket + 1}%: bucket ${bucket} < ${bucket + 1}`,
    });
    expect(detectVersion({ id, env: {}, coordination: { version: 'auto', v2RolloutPercentage: bucket } })).toEqual({
      version: 'v1',
      reason: `rollout ${bucket}%: bucket ${bucket} >= ${bucket}`,
    });
    expect(detectVersion({ id, env: { V2_ROLLOUT_PERCENTAGE: '0' } }).version).toBe('v1');
    expect(detectVersion({ id, env: { V2_ROLLOUT_PERCENTAGE: '100' } }).version).toBe('v2');
  });

  it('then auto, by the (injectable) preflight', () => {
    expect(detectVersion({ id: 's', env: {}, coordination: { version: 'auto' }, preflight: pass })).toEqual({
      version: 'v2',
      reason: 'auto: V2 preflight passed (fine)',
    });
    expect(detectVersion({ id: 's', env: {}, coordination: { version: 'auto' }, preflight: fail })).toEqual({
      version: 'v1',
      reason: 'auto: V2 preflight failed (/dev/shm/cfn not writable)',
    });
  });

  it('else v1', () => {
    expect(detectVersion({ id: 's', env: { COORDINATION_VERSION: '' } })).toMatchObject({ version: 'v1', reason: expect.stringMatching(/^default: v1/) });
  });

  it('names the variable or field of an invalid value', () => {
    expect(() => detectVersion({ id: 's', env: { COORDINATION_VERSION: 'v3' } })).toThrow(
      new InvalidVersionSettingError('COORDINATION_VERSION', 'expected v1 or v2, got "v3"'),
    );
    expect(() => detectVersion({ id: 's', env: { V2_ROLLOUT_PERCENTAGE: 'ten' } })).toThrow(
      'V2_ROLLOUT_PERCENTAGE: expected a number from 0 to 100, got "ten"',
    );
    expect(() => detectVersion({ id: 's', env: { V2_ROLLOUT_PERCENTAGE: '101' } })).toThrow(/^V2_ROLLOUT_PERCENTAGE: /);
    const badConfig = { version: 'v9' } as unknown as { version: 'v1' };
    expect(() => detectVersion({ id: 's', env: {}, coordination: badConfig })).toThrow(ConfigError);
    expect(() => detectVersion({ id: 's', env: {}, coordination: badConfig })).toThrow('coordination.version: expected one of "v1" | "v2" | "auto", got "v9"');
  });
});

describe('rollout buckets', () => {
  const ids = Array.from({ length: 1000 }, (_, i) => `swarm-${i}`);

  it('routes 8-12% of 1000 ids to V2 at 10%', () => {
    const v2 = ids.filter((id) => detectVersion({ id, env: { V2_ROLLOUT_PERCENTAGE: '10' } }).version === 'v2').length;
    expect(v2).toBeGreaterThanOrEqual(80);
    expect(v2).toBeLessThanOrEqual(120);
  });

  it('is stable: a second node process gives every id the same answer', () => {
    const here1 = ids.map((id) => `${id} ${detectVersion({ id, env: { V2_ROLLOUT_PERCENTAGE: '10' } }).version}`);
    const child = spawnSync(
      process.execPath,
      ['--experimental-transform-types', '--no-warnings', '--import', loader, join(here, 'fixtures', 'decide-many.ts')],
      {
        input: ids.join('\n'),
        encoding: 'utf8',
        env: { PATH: process.env.PATH, V2_ROLLOUT_PERCENTAGE: '10' },
        timeout: 30_000,
      },
    );
    expect(child.stderr).toBe('');
    expect(child.stdout.trim().split('\n')).toEqual(here1);
  }, 30_000);

  it('is sha256-based: first 4 bytes big-endian mod 100', () => {
    // Recomputed here, independently of the module.
    const expected = createHash('sha256').update('swarm-0').digest().readUInt32BE(0) % 100;
    expect(rolloutBucket('swarm-0')).toBe(expected);
    expect(ids.every((id) => rolloutBucket(id) >= 0 && rolloutBucket(id) < 100)).toBe(true);
  });
});

describe('v2Preflight (TypeScript)', () => {
  it('passes on this machine for a writable tmpfs root and fails naming an unwritable one', () => {
    expect(v2Preflight({ shmPath: '/dev/shm/cfn-preflight-test/sub' })).toMatchObject({ ok: true });
    expect(v2Preflight({ shmPath: '/proc/cfn' })).toEqual({ ok: false, reason: expect.stringMatching(/^\/proc\/cfn not writable \(/) });
    expect(v2Preflight({ shmPath: '/etc/hostname/cfn' })).toEqual({ ok: false, reason: '/etc/hostname/cfn not writable (ENOTDIR on /etc/hostname/cfn)' });
    expect(v2Preflight({ shmPath: '/tmp', bash: '/nonexistent/bash' })).toEqual({ ok: false, reason: '/nonexistent/bash not runnable' });
  });
});

function swarmOf(spec: Record<string, unknown>): Swarm {
  return swarm.parse({
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name: 's', namespace: 'ns' },
    spec: { objective: 'o', agent: { command: ['cat'] }, ...spec },
  });
}

describe('decideSwarmVersion: spec > operator COORDINATION_VERSION > RolloutPolicy > operator default', () => {
  const routed = { version: 'v2' as const, reason: 'RolloutPolicy p: bucket 3 < 10', rollout: { policy: 'p', bucket: 3, percentage: 10 } };

  it("takes the spec's version over everything", () => {
    const s = swarmOf({ agents: 2, coordination: { version: 'v1' } });
    expect(decideSwarmVersion(s, { operatorVersion: 'v2', rollout: () => routed, defaultVersion: 'v2' })).toEqual({
      version: 'v1',
      reason: 'spec.coordination.version=v1',
    });
  });

  it("then the operator's COORDINATION_VERSION, then the policy, then the default", () => {
    const s = swarmOf({ agents: 2 });
    expect(decideSwarmVersion(s, { operatorVersion: 'v1', rollout: () => routed, defaultVersion: 'v2' })).toEqual({
      version: 'v1',
      reason: 'operator COORDINATION_VERSION=v1',
    });
    expect(decideSwarmVersion(s, { rollout: () => routed, defaultVersion: 'v1' })).toEqual(routed);
    expect(decideSwarmVersion(s, { rollout: () => undefined, defaultVersion: 'v1' })).toEqual({
      version: 'v1',
      reason: 'operator default v1 (no RolloutPolicy)',
    });
  });
});

describe('the flat limit: one rule (FLAT_MAX_AGENTS)', () => {
  it('auto is flat up to FLAT_MAX_AGENTS agents and hybrid above, for cfn run and for a Swarm (agents or tasks)', () => {
    expect(resolveTopology('auto', FLAT_MAX_AGENTS)).toBe('flat');
    expect(resolveTopology('auto', FLAT_MAX_AGENTS + 1)).toBe('hybrid');
    expect(resolveTopology('flat', 5000)).toBe('flat');
    expect(resolveSwarmTopology(swarmOf({ agents: FLAT_MAX_AGENTS }))).toBe('flat');
    expect(resolveSwarmTopology(swarmOf({ agents: FLAT_MAX_AGENTS + 1 }))).toBe('hybrid');
    expect(resolveSwarmTopology(swarmOf({ tasks: Array.from({ length: FLAT_MAX_AGENTS + 1 }, (_, i) => `t${i}`) }))).toBe('hybrid');
    expect(resolveSwarmTopology(swarmOf({ agents: 5, topology: 'hybrid' }))).toBe('hybrid');
  });

  it('config/performance-limits.json recommends at most FLAT_MAX_AGENTS agents per coordinator, the size of an auto shard', () => {
    expect(loadPerformanceLimits().coordinator.recommendedMaxAgents).toBe(FLAT_MAX_AGENTS);
  });
});
