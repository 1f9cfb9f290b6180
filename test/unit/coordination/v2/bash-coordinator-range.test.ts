// ObjectiveSpec.indexRange on the real bash engine (real /dev/shm, real agents):
// a shard runs exactly its agents with the swarm's indexes, and counts its range.
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectiveSpec } from '../../../../operator/coordination/types.js';
import { BashCoordinator } from '../../../../operator/coordination/v2/bash-coordinator.js';
import { InvalidSpecError } from '../../../../operator/coordination/v2/spec.js';
import { createLogger } from '../../../../operator/observability/logger.js';
import { processesWithEnv } from '../../../../operator/util/proc.js';
import { objectiveSpec } from '../../../helpers/objective-spec.js';

jest.setTimeout(120_000);

const logger = createLogger({ name: 'test', level: 'silent' });
let shm: string;
const coordinators: BashCoordinator[] = [];

function make(options: ConstructorParameters<typeof BashCoordinator>[0] = {}): BashCoordinator {
  const c = new BashCoordinator({ shmPath: shm, logger, ...options });
  coordinators.push(c);
  return c;
}

const spec = (overrides: Partial<ObjectiveSpec> = {}): ObjectiveSpec => objectiveSpec({ agents: 10, ...overrides });

beforeAll(async () => {
  shm = await mkdtemp('/dev/shm/cfn-test-v2-range-');
});

afterEach(async () => {
  await Promise.all(coordinators.splice(0).map((c) => c.stop()));
});

afterAll(async () => {
  await rm(shm, { recursive: true, force: true });
});

describe('BashCoordinator with an index range', () => {
  it('runs exactly agents start..end-1 with their swarm indexes, tasks, task env and the swarm total; the status counts the range', async () => {
    let taskFiles: string[] = [];
    let envFiles: string[] = [];
    const c = make({
      beforeCleanup: async (root) => {
        taskFiles = (await readdir(join(root, 'tasks'))).sort();
        envFiles = (await readdir(join(root, 'task-env'))).sort();
      },
    });
    await c.start();
    const tasks = Array.from({ length: 10 }, (_, i) => `task ${i}`);
    const taskEnv = Array.from({ length: 10 }, (_, i) => ({ MY_FILE: `file-${i}` }));
    const started: unknown[] = [];
    c.on('objective:started', (e) => started.push(e));
    const s = spec({
      tasks,
      taskEnv,
      indexRange: { start: 3, end: 7 },
      agentCommand: ['sh', '-c', 'printf "%s %s %s %s %s" "$AGENT_INDEX" "$AGENT_ID" "$CFN_AGENTS_TOTAL" "$MY_FILE" "$(cat)"'],
    });
    const result = await c.executeObjective(s);
    expect(result.status).toMatchObject({ status: 'completed', deliveryRate: 100, agents: { total: 4, completed: 4, failed: 0 } });
    expect(result.responses.map((r) => [r.index, r.agentId, r.output])).toEqual(
      [3, 4, 5, 6].map((i) => [i, `agent-${i}`, `${i} agent-${i} 10 file-${i} task ${i}`]),
    );
    expect(started).toEqual([expect.objectContaining({ objectiveId: s.id, agents: 4, alreadyFinal: 0 })]);
    // Only the range's tasks and environments were written into the root.
    expect(taskFiles).toEqual(['3', '4', '5', '6']);
    expect(envFiles).toEqual(['3', '4', '5', '6']);
    // The agents the objective holds are its range.
    expect((await c.listAgents(s.id))?.map((a) => [a.index, a.state])).toEqual([3, 4, 5, 6].map((i) => [i, 'completed']));
    expect(await c.getAgentState(s.id, 2)).toBeUndefined();
    expect(await c.getAgentResponse(s.id, 7)).toBeUndefined();
    expect((await c.getAgentResponse(s.id, 6))?.output).toBe('6 agent-6 10 file-6 task 6');
    expect(await c.getSwarmStatus(s.id)).toMatchObject({ agents: { total: 4, completed: 4, failed: 0 } });
    expect(await processesWithEnv('SWARM_ID', s.id)).toEqual([]);
    expect(existsSync(join(shm, s.id))).toBe(false);
  });

  it('resumes inside a range: completed and failed indexes count, only the rest runs; delivery is completed / range size', async () => {
    const c = make();
    await c.start();
    const s = spec({
      agents: 20,
      indexRange: { start: 10, end: 15 },
      completedIndexes: [10, 11],
      failedIndexes: [13],
      agentCommand: ['sh', '-c', '[ "$AGENT_INDEX" -ne 14 ]'],
    });
    const started: unknown[] = [];
    c.on('objective:started', (e) => started.push(e));
    const result = await c.executeObjective(s);
    expect(result.responses.map((r) => [r.index, r.status])).toEqual([
      [12, 'completed'],
      [14, 'failed'],
    ]);
    expect(result.status).toMatchObject({ status: 'completed', deliveryRate: 60, agents: { total: 5, completed: 3, failed: 2 } });
    expect(started).toEqual([expect.objectContaining({ agents: 5, alreadyFinal: 3 })]);
  });

  it("two shards of one swarm at once on one machine (two shm roots): the first to end leaves the other shard's agents running", async () => {
    await mkdir(join(shm, 'a'));
    await mkdir(join(shm, 'b'));
    const a = make({ shmPath: join(shm, 'a') });
    const b = make({ shmPath: join(shm, 'b') });
    await Promise.all([a.start(), b.start()]);
    const id = `twin${process.pid}`;
    const slow = spec({ id, indexRange: { start: 5, end: 10 }, concurrency: 5, agentCommand: ['sh', '-c', 'sleep 1.5; echo "$AGENT_INDEX"'] });
    const fast = spec({ id, indexRange: { start: 0, end: 5 }, concurrency: 5, agentCommand: ['sh', '-c', 'echo "$AGENT_INDEX"'] });
    const slowRun = b.executeObjective(slow);
    // The fast shard starts once the slow shard's agents run, and ends (and cleans up) while they still do.
    const deadline = Date.now() + 10_000;
    while ((await processesWithEnv('SWARM_ID', id)).length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const fastResult = await a.executeObjective(fast);
    expect(fastResult.status).toMatchObject({ status: 'completed', agents: { total: 5, completed: 5, failed: 0 } });
    const slowResult = await slowRun;
    expect(slowResult.status).toMatchObject({ status: 'completed', deliveryRate: 100, agents: { total: 5, completed: 5, failed: 0 } });
    expect(slowResult.responses.map((r) => [r.index, r.output])).toEqual([5, 6, 7, 8, 9].map((i) => [i, `${i}\n`]));
  });

  it('refuses a range outside the swarm and earlier indexes outside the range, before anything runs', async () => {
    const c = make();
    await c.start();
    const cases: [Partial<ObjectiveSpec>, string][] = [
      [
        { indexRange: { start: 4, end: 4 } },
        'invalid objective spec: indexRange: expected integers with 0 <= start < end <= agents (10), got {start: 4, end: 4}',
      ],
      [
        { indexRange: { start: 0, end: 11 } },
        'invalid objective spec: indexRange: expected integers with 0 <= start < end <= agents (10), got {start: 0, end: 11}',
      ],
      [{ indexRange: { start: 3, end: 7 }, completedIndexes: [2] }, "invalid objective spec: completedIndexes: 2 is outside the run's range 3..6"],
      [{ indexRange: { start: 3, end: 7 }, failedIndexes: [7] }, "invalid objective spec: failedIndexes: 7 is outside the run's range 3..6"],
    ];
    for (const [overrides, message] of cases) {
      const s = spec(overrides);
      const err = await c.executeObjective(s).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidSpecError);
      expect((err as Error).message).toBe(message);
      expect(existsSync(join(shm, s.id))).toBe(false);
    }
  });
});
