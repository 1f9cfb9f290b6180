import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinatorFactory, CoordinatorStartError } from '../../../../operator/coordination/factory/coordinator-factory.js';
import type { CoordinatorFactoryConfig, CreatedCoordinator } from '../../../../operator/coordination/factory/coordinator-factory.js';
import { EventBus } from '../../../../operator/coordination/v1/event-bus.js';
import type { SwarmEvents } from '../../../../operator/coordination/v1/event-bus.js';
import { SwarmCoordinator } from '../../../../operator/coordination/v1/swarm-coordinator.js';
import { BashCoordinator } from '../../../../operator/coordination/v2/bash-coordinator.js';

/** Running (not gone, not a zombie waiting for its parent). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('CoordinatorFactory', () => {
  let dir: string;
  let shm: string;
  let created: CreatedCoordinator | undefined;
  const warnings: Array<{ obj: object; msg: string }> = [];
  const logger = { warn: (obj: object, msg: string) => warnings.push({ obj, msg }) };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfn-factory-'));
    shm = mkdtempSync('/dev/shm/cfn-factory-test-');
    warnings.length = 0;
    created = undefined;
  });
  afterEach(async () => {
    await created?.coordinator.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  });

  function config(env: Record<string, string>, extra: Partial<CoordinatorFactoryConfig> = {}): CoordinatorFactoryConfig {
    return {
      id: 'swarm-1',
      env: { PATH: process.env.PATH, ...env },
      coordination: {},
      logger,
      v1: { memoryPath: join(dir, 'memory.sqlite') },
      ...extra,
      v2: { shmPath: shm, ...extra.v2 },
    };
  }

  it('starts V1 when V1 is chosen, without touching V2', async () => {
    created = await CoordinatorFactory.create(config({ COORDINATION_VERSION: 'v1' }));
    expect(created.coordinator).toBeInstanceOf(SwarmCoordinator);
    expect(created.decision).toEqual({ version: 'v1', reason: 'COORDINATION_VERSION=v1' });
    expect(created.fallback).toBeUndefined();
  });

  it('starts V2 when chosen and healthy (real bash preflight)', async () => {
    const fallbacks: unknown[] = [];
    const bus = new EventBus();
    bus.subscribe('coordination:fallback', (e) => fallbacks.push(e));
    created = await CoordinatorFactory.create(config({ COORDINATION_VERSION: 'v2' }, { bus }));
    expect(created.coordinator).toBeInstanceOf(BashCoordinator);
    expect(created.coordinator.version).toBe('v2');
    expect(fallbacks).toEqual([]);
  }, 20_000);

  it('falls back to a started V1 when V2 cannot start: warning, event, one user line', async () => {
    const bus = new EventBus();
    const events: Array<SwarmEvents['coordination:fallback']> = [];
    bus.subscribe('coordination:fallback', (e) => events.push(e));
    const lines: string[] = [];
    created = await CoordinatorFactory.create(
      config({ COORDINATION_VERSION: 'v2' }, { bus, onUserMessage: (l) => lines.push(l), v2: { bashPath: '/nonexistent/bash' } }),
    );
    expect(created.coordinator).toBeInstanceOf(SwarmCoordinator);
    expect(lines).toEqual(['V2 unavailable (bash not executable at /nonexistent/bash), using V1 fallback']);
    expect(events).toEqual([{ from: 'v2', to: 'v1', reason: 'bash not executable at /nonexistent/bash', timestamp: expect.any(Number) }]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(/falling back to V1/);
    // The fallback really runs agents.
    const result = await created.coordinator.executeObjective({
      id: 'fb-1',
      description: 'x',
      agents: 2,
      agentCommand: ['true'],
      agentTimeoutSeconds: 5,
      retries: 0,
      concurrency: 2,
      timeoutSeconds: 30,
      maxOutputBytes: 100,
    });
    expect(result.status).toMatchObject({ status: 'completed', deliveryRate: 100 });
  });

  it('carries the precise reason of a failed bash preflight into the user line', async () => {
    const lines: string[] = [];
    created = await CoordinatorFactory.create(
      config({ COORDINATION_VERSION: 'v2' }, { onUserMessage: (l) => lines.push(l), v2: { shmPath: '/etc/hostname/cfn' } }),
    );
    expect(created.coordinator.version).toBe('v1');
    expect(created.fallback?.reason).toMatch(/hostname/);
    expect(lines).toEqual([`V2 unavailable (${created.fallback?.reason}), using V1 fallback`]);
  }, 20_000);

  it('falls back when V2 does not start within fallbackTimeout, and kills the abandoned preflight (regression: it lived on for up to 30 s)', async () => {
    const slowBash = join(dir, 'slow-bash');
    const pids = join(dir, 'pids');
    // Records its pid and its sleeping child's: both must be gone after the fallback.
    writeFileSync(slowBash, `#!/bin/sh\nsleep 20 &\necho "$$ $!" > '${pids}'\nwait\n`);
    chmodSync(slowBash, 0o755);
    const started = Date.now();
    created = await CoordinatorFactory.create(config({ COORDINATION_VERSION: 'v2' }, { fallbackTimeoutMs: 200, v2: { bashPath: slowBash } }));
    // At the 200 ms timeout, not when the 20 s preflight would end (a loaded machine adds its delay).
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(created.coordinator.version).toBe('v1');
    expect(created.fallback).toEqual({ reason: 'V2 start took longer than 200 ms', userMessage: expect.any(String), elapsedMs: expect.any(Number) });
    const both = readFileSync(pids, 'utf8').trim().split(' ').map(Number);
    expect(both).toHaveLength(2);
    expect(both.filter(alive)).toEqual([]);
    expect(execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' })).not.toContain(slowBash);
  }, 10_000);

  it('with fallback disabled, fails with a clear error and starts nothing', async () => {
    const attempt = CoordinatorFactory.create(
      config({ COORDINATION_VERSION: 'v2' }, { coordination: { fallbackEnabled: false }, v2: { bashPath: '/nonexistent/bash' } }),
    );
    await expect(attempt).rejects.toThrow(CoordinatorStartError);
    await expect(attempt).rejects.toThrow(
      'V2 coordinator failed to start: bash not executable at /nonexistent/bash (fallback to V1 is disabled: coordination.fallbackEnabled=false)',
    );
    expect(warnings).toEqual([]);
  });

  it('reads claude-flow.config.json from the working directory when no coordination is given', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      writeFileSync(join(dir, 'claude-flow.config.json'), JSON.stringify({ coordination: { version: 'v1' } }));
      const { coordination: _omit, ...rest } = config({});
      created = await CoordinatorFactory.create(rest);
      expect(created.decision).toEqual({ version: 'v1', reason: `coordination.version=v1 (${join(dir, 'claude-flow.config.json')})` });
    } finally {
      process.chdir(cwd);
    }
  });

  it('an explicit choice (CLI flag) beats the environment', async () => {
    created = await CoordinatorFactory.create(config({ COORDINATION_VERSION: 'v2' }, { explicit: { version: 'v1', source: '--engine' } }));
    expect(created.decision).toEqual({ version: 'v1', reason: '--engine=v1' });
    expect(created.coordinator.version).toBe('v1');
  });
});
