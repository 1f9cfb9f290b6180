import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCfnConfig } from '../../../operator/config/cfn-config.js';
import { ConfigError } from '../../../operator/config/config-error.js';
import { shippedConfigPath } from '../../../operator/util/package-root.js';
import { checkAgentLimits, loadPerformanceLimits } from '../../../operator/config/performance-limits.js';
import { loadV2Config } from '../../../operator/config/v2-config.js';
import { defaultMemoryPath } from '../../../operator/coordination/v1/response-checkpoint-store.js';

describe('shipped config files', () => {
  it('config/v2-config.json validates and carries the documented defaults', () => {
    expect(loadV2Config()).toMatchObject({
      maxOutputBytes: 65536,
      fallbackTimeoutMs: 5000,
      fallbackEnabled: true,
    });
  });

  it('config/performance-limits.json validates: one coordinator up to 300 agents recommended, 10000 at most', () => {
    const limits = loadPerformanceLimits();
    expect(limits.coordinator).toEqual({ recommendedMaxAgents: 300, maxAgents: 10000 });
    expect(checkAgentLimits(limits, 100)).toEqual({ ok: true });
    expect(checkAgentLimits(limits, 300)).toEqual({ ok: true });
    expect(checkAgentLimits(limits, 500)).toEqual({
      ok: true,
      warning: '500 agents on one coordinator is more than the recommended 300: consider shards (--shard I/N)',
    });
    expect(checkAgentLimits(limits, 10001)).toEqual({
      ok: false,
      reason: "10001 agents exceed one coordinator's maximum of 10000: split the swarm into shards (--shard I/N)",
    });
    expect(checkAgentLimits(limits, 0)).toMatchObject({ ok: false });
  });
});

describe('invalid config files fail with file, field and expectation', () => {
  let dir: string;
  let cwd: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfn-config-'));
    cwd = process.cwd();
    process.chdir(dir);
  });
  afterEach(() => {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  });

  function v2With(patch: Record<string, unknown>): string {
    const base = JSON.parse(readFileSync(shippedConfigPath('v2-config.json'), 'utf8')) as Record<string, unknown>;
    const file = join(dir, 'config', 'v2-config.json');
    mkdirSync(join(dir, 'config'), { recursive: true });
    writeFileSync(file, JSON.stringify({ ...base, ...patch }));
    return file;
  }

  it.each([
    [{ concurrency: 'x' }, 'config/v2-config.json: concurrency: expected number, got "x"'],
    [{ concurrency: 0 }, 'config/v2-config.json: concurrency: expected number >= 1, got 0'],
    [{ topology: 'hybrid' }, 'config/v2-config.json: topology: unknown field "topology"'],
    [{ fallbackEnabled: 'yes' }, 'config/v2-config.json: fallbackEnabled: expected boolean, got "yes"'],
    [{ retries: 2.5 }, 'config/v2-config.json: retries: expected integer, got 2.5'],
    [{ concurrencyy: 5 }, 'config/v2-config.json: concurrencyy: unknown field "concurrencyy"'],
    [{ shmPath: '/dev/shm/cfn' }, 'config/v2-config.json: shmPath: unknown field "shmPath"'],
    [{ concurrency: undefined }, 'config/v2-config.json: concurrency: expected number, got nothing'],
  ])('%j', (patch, message) => {
    const file = v2With(patch);
    expect(() => loadV2Config(file)).toThrow(ConfigError);
    expect(() => loadV2Config(file)).toThrow(message);
    try {
      loadV2Config(file);
    } catch (err) {
      expect((err as Error).message).toBe(message);
    }
  });

  it('names a missing file and a file that is not JSON', () => {
    expect(() => loadV2Config(join(dir, 'nope.json'))).toThrow('nope.json: file not found');
    writeFileSync(join(dir, 'bad.json'), '{"topology": ');
    expect(() => loadV2Config(join(dir, 'bad.json'))).toThrow(/^bad\.json: not valid JSON: /);
  });

  it('names the nested field of performance-limits.json', () => {
    const file = join(dir, 'performance-limits.json');
    const limits = JSON.parse(readFileSync(shippedConfigPath('performance-limits.json'), 'utf8')) as { coordinator: { maxAgents: unknown } };
    limits.coordinator.maxAgents = -5;
    writeFileSync(file, JSON.stringify(limits));
    expect(() => loadPerformanceLimits(file)).toThrow('performance-limits.json: coordinator.maxAgents: expected number >= 1, got -5');
  });

  it('loads cfn.config.json coordination settings; a missing file means none', () => {
    expect(loadCfnConfig()).toEqual({ file: undefined, coordination: {} });
    writeFileSync(
      'cfn.config.json',
      JSON.stringify({ other: { tool: true }, coordination: { version: 'auto', v2RolloutPercentage: 10, fallbackEnabled: false, fallbackTimeout: 2000 } }),
    );
    expect(loadCfnConfig()).toEqual({
      file: join(process.cwd(), 'cfn.config.json'),
      coordination: { version: 'auto', v2RolloutPercentage: 10, fallbackEnabled: false, fallbackTimeout: 2000 },
    });
  });

  it("reads claude-flow.config.json (the design's name) only when there is no cfn.config.json", () => {
    writeFileSync('claude-flow.config.json', JSON.stringify({ coordination: { version: 'v1' } }));
    expect(loadCfnConfig()).toEqual({ file: join(process.cwd(), 'claude-flow.config.json'), coordination: { version: 'v1' } });
    writeFileSync('cfn.config.json', JSON.stringify({ coordination: { version: 'v2' } }));
    expect(loadCfnConfig()).toEqual({ file: join(process.cwd(), 'cfn.config.json'), coordination: { version: 'v2' } });
  });

  it.each([
    [{ version: 'v3' }, 'cfn.config.json: coordination.version: expected one of "v1" | "v2" | "auto", got "v3"'],
    [{ v2RolloutPercentage: 150 }, 'cfn.config.json: coordination.v2RolloutPercentage: expected number <= 100, got 150'],
    [{ fallbackTimeout: '5s' }, 'cfn.config.json: coordination.fallbackTimeout: expected number, got "5s"'],
    [{ fallbackEnabeld: true }, 'cfn.config.json: coordination.fallbackEnabeld: unknown field "fallbackEnabeld"'],
  ])('cfn.config.json %j', (coordination, message) => {
    writeFileSync('cfn.config.json', JSON.stringify({ coordination }));
    expect(() => loadCfnConfig()).toThrow(message);
  });

  it('V1 keeps its checkpoints in .cfn/memory.sqlite, or in .claude-flow/memory.sqlite when only that one exists', () => {
    expect(defaultMemoryPath(dir)).toBe('.cfn/memory.sqlite');
    mkdirSync(join(dir, '.claude-flow'));
    writeFileSync(join(dir, '.claude-flow', 'memory.sqlite'), '');
    expect(defaultMemoryPath(dir)).toBe('.claude-flow/memory.sqlite');
    mkdirSync(join(dir, '.cfn'));
    writeFileSync(join(dir, '.cfn', 'memory.sqlite'), '');
    expect(defaultMemoryPath(dir)).toBe('.cfn/memory.sqlite');
  });
});
