import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventBus } from '../../../../operator/coordination/v1/event-bus.js';
import type { SwarmEvents } from '../../../../operator/coordination/v1/event-bus.js';
import { SwarmCoordinator } from '../../../../operator/coordination/v1/swarm-coordinator.js';
import type { ObjectiveSpec } from '../../../../operator/coordination/types.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures');

function spec(overrides: Partial<ObjectiveSpec> = {}): ObjectiveSpec {
  return {
    id: 'obj-1',
    description: 'say hello',
    agents: 1,
    agentCommand: ['cat'],
    agentTimeoutSeconds: 10,
    retries: 0,
    concurrency: 16,
    timeoutSeconds: 60,
    maxOutputBytes: 65536,
    ...overrides,
  };
}

/** Pids of this process's live children (ps is procps here). */
function childPids(): string[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.trim() !== '' && !/\bps -o/.test(l))
    .map((l) => l.trim());
}

function nonPsChildren(): string[] {
  // childPids() leaves out the ps it runs to look.
  return childPids();
}

describe('SwarmCoordinator (V1)', () => {
  let dir: string;
  let coordinator: SwarmCoordinator;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cfn-v1-'));
    coordinator = new SwarmCoordinator({ memoryPath: join(dir, 'memory.sqlite'), backoffBaseMs: 10, killGraceMs: 200 });
    await coordinator.start();
  });

  afterEach(async () => {
    await coordinator.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs 1 agent and returns the contract response', async () => {
    const result = await coordinator.executeObjective(spec());
    expect(result.responses).toEqual([
      {
        agentId: 'agent-0',
        index: 0,
        status: 'completed',
        exitCode: 0,
        attempts: 1,
        durationMs: expect.any(Number),
        output: 'say hello',
        outputBytes: 9,
        outputTruncated: false,
        error: null,
      },
    ]);
    expect(result.status).toMatchObject({ objectiveId: 'obj-1', status: 'completed', agents: { total: 1, completed: 1, failed: 0 }, deliveryRate: 100 });
    expect(existsSync(join(dir, 'memory.sqlite'))).toBe(true);
  });

  it('runs 100 agents with per-agent tasks', async () => {
    const tasks = Array.from({ length: 100 }, (_, i) => `task number ${i}`);
    const result = await coordinator.executeObjective(spec({ agents: 100, tasks, concurrency: 32 }));
    expect(result.responses).toHaveLength(100);
    expect(result.responses.map((r) => r.output)).toEqual(tasks);
    expect(result.status).toMatchObject({ status: 'completed', agents: { total: 100, completed: 100, failed: 0 }, deliveryRate: 100 });
    expect(result.status.throughputAgentsPerSec).toBeGreaterThan(0);
  }, 60_000);

  it('runs 500 agents (`true`) and delivers every response', async () => {
    const result = await coordinator.executeObjective(spec({ id: 'five-hundred', agents: 500, agentCommand: ['true'], concurrency: 64 }));
    expect(result.responses).toHaveLength(500);
    expect(new Set(result.responses.map((r) => r.index)).size).toBe(500);
    expect(result.status).toMatchObject({ status: 'completed', agents: { total: 500, completed: 500, failed: 0 }, deliveryRate: 100 });
    expect(coordinator.getMetrics('five-hundred')).toMatchObject({ started: 500, completed: 500, failed: 0, running: 0 });
    expect(await coordinator.getSwarmStatus('five-hundred')).toMatchObject({ status: 'completed', agents: { completed: 500 } });
  }, 120_000);

  it('reports failing agents (exit 3) with their exit code and stderr, retried', async () => {
    const result = await coordinator.executeObjective(spec({ agents: 3, retries: 2, agentCommand: ['sh', '-c', 'echo "bad thing" >&2; exit 3'] }));
    expect(result.responses).toHaveLength(3);
    for (const r of result.responses) expect(r).toMatchObject({ status: 'failed', exitCode: 3, attempts: 3, error: 'bad thing' });
    expect(result.status).toMatchObject({ status: 'completed', agents: { completed: 0, failed: 3 }, deliveryRate: 0 });
  });

  it('kills hanging agents at the agent timeout', async () => {
    const started = Date.now();
    const result = await coordinator.executeObjective(spec({ agents: 4, agentTimeoutSeconds: 0.3, agentCommand: ['sleep', '30'] }));
    expect(Date.now() - started).toBeLessThan(5000);
    for (const r of result.responses) expect(r).toMatchObject({ status: 'failed', exitCode: null, attempts: 1, error: 'timed out after 0.3s' });
    expect(nonPsChildren()).toEqual([]);
  });

  it('retries flaky agents that fail their first attempt (CFN_ATTEMPT)', async () => {
    const retries: Array<SwarmEvents['agent:retry']> = [];
    coordinator.bus.subscribe('agent:retry', (e) => retries.push(e));
    const result = await coordinator.executeObjective(spec({ agents: 5, retries: 1, agentCommand: ['sh', join(fixtures, 'flaky-agent.sh')] }));
    for (const r of result.responses) {
      expect(r).toMatchObject({ status: 'completed', attempts: 2, exitCode: 0, error: null, output: `ok agent-${r.index} attempt 2` });
    }
    expect(retries).toHaveLength(5);
    expect(retries[0]).toMatchObject({ attempt: 2, delayMs: 10, error: 'flaky: attempt 1 failed' });
  });

  it('counts completedIndexes as completed and failedIndexes as failed, running neither again', async () => {
    const result = await coordinator.executeObjective(
      spec({ agents: 6, completedIndexes: [1, 3], failedIndexes: [5], agentCommand: ['sh', '-c', 'printf "%s" "$AGENT_INDEX"'] }),
    );
    expect(result.responses.map((r) => r.index)).toEqual([0, 2, 4]);
    expect(result.status).toMatchObject({ status: 'completed', agents: { total: 6, completed: 5, failed: 1 }, deliveryRate: 83.3 });
    expect(await coordinator.getAgentState('obj-1', 1)).toBe('completed');
    expect(await coordinator.getAgentState('obj-1', 5)).toBe('failed');
    expect(await coordinator.getAgentState('obj-1', 6)).toBeUndefined();
    expect(await coordinator.getSwarmStatus('obj-1')).toMatchObject({ agents: { total: 6, completed: 5, failed: 1 }, deliveryRate: 83.3 });
  });

  it('noRetryExitCodes: an attempt ending with such a code is final (1 attempt); other failures use every retry', async () => {
    const result = await coordinator.executeObjective(
      spec({ agents: 3, retries: 2, noRetryExitCodes: [4], agentCommand: ['sh', '-c', 'exit $(( AGENT_INDEX == 0 ? 4 : AGENT_INDEX == 1 ? 5 : 0 ))'] }),
    );
    expect(result.responses.map((r) => [r.index, r.status, r.exitCode, r.attempts])).toEqual([
      [0, 'failed', 4, 1],
      [1, 'failed', 5, 3],
      [2, 'completed', 0, 1],
    ]);
    expect(result.status).toMatchObject({ agents: { total: 3, completed: 1, failed: 2 }, deliveryRate: 33.3 });
  });

  it('publishes typed events on the bus and on itself', async () => {
    const bus = new EventBus();
    const c2 = new SwarmCoordinator({ memoryPath: join(dir, 'events.sqlite'), bus });
    await c2.start();
    try {
      const seen: string[] = [];
      for (const name of ['objective:started', 'agent:started', 'agent:completed', 'agent:failed', 'objective:completed'] as const) {
        bus.subscribe(name, () => seen.push(`bus:${name}`));
      }
      c2.on('objective:completed', () => seen.push('self:objective:completed'));
      await c2.executeObjective(spec({ agents: 2, tasks: ['0', '1'], agentCommand: ['sh', '-c', 'test "$AGENT_INDEX" = 0'] }));
      expect(seen.filter((s) => s === 'bus:agent:started')).toHaveLength(2);
      expect(seen).toContain('bus:agent:completed');
      expect(seen).toContain('bus:agent:failed');
      expect(seen[0]).toBe('bus:objective:started');
      expect(seen.slice(-2)).toEqual(['bus:objective:completed', 'self:objective:completed']);
    } finally {
      await c2.stop();
    }
  });

  it('refuses bad objectives with a clear error and before starting', async () => {
    await expect(coordinator.executeObjective(spec({ id: '../etc' }))).rejects.toThrow(/invalid objective: id/);
    await expect(coordinator.executeObjective(spec({ agentCommand: [] }))).rejects.toThrow(/agentCommand/);
    await expect(coordinator.executeObjective(spec({ agents: 2, completedIndexes: [2] }))).rejects.toThrow(/completedIndexes: 2 is not below agents/);
    await expect(coordinator.executeObjective(spec({ agents: 2, failedIndexes: [2] }))).rejects.toThrow(/failedIndexes: 2 is not below agents/);
    await expect(coordinator.executeObjective(spec({ agents: 2, completedIndexes: [1], failedIndexes: [1] }))).rejects.toThrow(
      /failedIndexes: 1 is also in completedIndexes/,
    );
    await expect(coordinator.executeObjective(spec({ noRetryExitCodes: [0] }))).rejects.toThrow(/noRetryExitCodes/);
    await coordinator.executeObjective(spec());
    await expect(coordinator.executeObjective(spec({ agentCommand: ['true'] }))).rejects.toThrow(/already exists .* different/);
    const fresh = new SwarmCoordinator({ memoryPath: join(dir, 'x.sqlite') });
    await expect(fresh.executeObjective(spec())).rejects.toThrow(/not started/);
  });

  it('enforces the overall objective deadline', async () => {
    const result = await coordinator.executeObjective(spec({ agents: 3, concurrency: 1, timeoutSeconds: 0.3, agentCommand: ['sleep', '30'] }));
    expect(result.status.status).toBe('timeout');
    expect(result.responses).toEqual([]);
    expect(await coordinator.getSwarmStatus('obj-1')).toMatchObject({ status: 'timeout', deliveryRate: 0 });
    expect(nonPsChildren()).toEqual([]);
  });

  it('reports live status and agent states while running', async () => {
    const firstStarted = new Promise((r) => coordinator.bus.once('agent:started', r));
    const running = coordinator.executeObjective(spec({ agents: 2, concurrency: 1, agentCommand: ['sh', '-c', 'sleep 0.3'] }));
    await firstStarted;
    expect(await coordinator.getSwarmStatus('obj-1')).toMatchObject({ status: 'running', agents: { total: 2, completed: 0 } });
    expect(await coordinator.getAgentState('obj-1', 0)).toBe('running');
    expect(await coordinator.getAgentState('obj-1', 1)).toBe('pending');
    await running;
    expect(await coordinator.getAgentState('obj-1', 1)).toBe('completed');
    expect(await coordinator.getSwarmStatus('nope')).toBeUndefined();
  });

  it('healthCheck reports the memory file', async () => {
    const health = await coordinator.healthCheck();
    expect(health).toMatchObject({ healthy: true, checks: { memory: { ok: true } } });
    await coordinator.stop();
    expect(await coordinator.healthCheck()).toMatchObject({ healthy: false, reason: 'not started' });
  });
});
