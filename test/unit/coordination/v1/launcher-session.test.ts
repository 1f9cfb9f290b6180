// V1 runs every attempt of a run through one launcher session (agent-process.ts):
// one process for the run, not one per attempt; a launcher that dies fails the
// attempts it had (retried as any failed attempt), and a session that dies is
// started again.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwarmCoordinator } from '../../../../operator/coordination/v1/swarm-coordinator.js';
import type { ObjectiveSpec } from '../../../../operator/coordination/types.js';
import { objectiveSpec } from '../../../helpers/objective-spec.js';

// The session is the agent's grandparent: session -> its own launcher -> the agent.
const SESSION_PID = 'cut -d" " -f4 "/proc/$PPID/stat"';

const spec = (overrides: Partial<ObjectiveSpec>): ObjectiveSpec =>
  objectiveSpec({ id: 'session-1', description: 'the objective', agentCommand: ['true'], ...overrides });

describe('V1 through one launcher session', () => {
  let dir: string;
  let coordinator: SwarmCoordinator;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cfn-v1-session-'));
    coordinator = new SwarmCoordinator({ memoryPath: join(dir, 'memory.sqlite'), backoffBaseMs: 10, killGraceMs: 200 });
    await coordinator.start();
  });

  afterEach(async () => {
    await coordinator.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every attempt of a run, retries included, goes through the same session', async () => {
    const script = `${SESSION_PID}; [ "$CFN_ATTEMPT" = 2 ] || exit 3`;
    const result = await coordinator.executeObjective(spec({ agents: 12, retries: 1, agentCommand: ['sh', '-c', script] }));
    expect(result.status).toMatchObject({ status: 'completed', agents: { total: 12, completed: 12, failed: 0 } });
    expect(result.responses.every((r) => r.attempts === 2)).toBe(true);
    const sessions = new Set(result.responses.map((r) => r.output.trim()));
    expect(sessions.size).toBe(1);
    expect(Number([...sessions][0])).toBeGreaterThan(1);
  });

  it('a launcher killed mid-run fails the attempts it had, saying so; they are retried and the run completes', async () => {
    const marker = join(dir, 'killed');
    // Agent 0's first attempt kills the launcher it runs under; the others are running beside it.
    const script = `if [ "$AGENT_INDEX" = 0 ] && [ ! -e "${marker}" ]; then : >"${marker}"; sleep 0.2; kill -KILL "$PPID"; sleep 1; fi; [ "$CFN_ATTEMPT" = 1 ] && sleep 1; echo ok`;
    const failures: string[] = [];
    coordinator.on('agent:retry', (e: { error: string }) => failures.push(e.error));
    const result = await coordinator.executeObjective(spec({ agents: 3, retries: 2, agentCommand: ['sh', '-c', script] }));
    expect(result.status).toMatchObject({ status: 'completed', agents: { total: 3, completed: 3, failed: 0 } });
    expect(failures.length).toBeGreaterThanOrEqual(1);
    for (const f of failures) expect(f).toMatch(/^the launcher ended before agent-\d+'s final answer \(killed or crashed\): its exit code is unknown$/);
    expect(result.responses[0]).toMatchObject({ status: 'completed', output: 'ok\n' });
    expect(result.responses[0]!.attempts).toBeGreaterThanOrEqual(2);
  });

  it('a session that dies fails its attempts (retried) and the next attempt starts a new one', async () => {
    const marker = join(dir, 'killed');
    const script = `s=$(${SESSION_PID}); if [ ! -e "${marker}" ]; then : >"${marker}"; kill -KILL "$s"; sleep 1; fi; echo "$s"`;
    const failures: string[] = [];
    coordinator.on('agent:retry', (e: { error: string }) => failures.push(e.error));
    const result = await coordinator.executeObjective(spec({ agents: 1, retries: 1, agentCommand: ['sh', '-c', script] }));
    expect(result.status).toMatchObject({ status: 'completed', agents: { total: 1, completed: 1, failed: 0 } });
    expect(result.responses[0]!.attempts).toBe(2);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/^agent launcher exited SIGKILL/);
  });
});
