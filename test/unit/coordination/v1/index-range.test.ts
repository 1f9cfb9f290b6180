// ObjectiveSpec.indexRange on V1: real agent processes, real SQLite. A shard
// runs exactly its agents with the swarm's indexes, counts its range, and its
// checkpoint resumes right even when other shards of the objective share the file.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SwarmCoordinator } from '../../../../operator/coordination/v1/swarm-coordinator.js';
import type { ObjectiveSpec } from '../../../../operator/coordination/types.js';
import { objectiveSpec } from '../../../helpers/objective-spec.js';

jest.setTimeout(60_000);

const spec = (overrides: Partial<ObjectiveSpec> = {}): ObjectiveSpec => objectiveSpec({ id: 'shardy', agents: 10, ...overrides });

describe('SwarmCoordinator (V1) with an index range', () => {
  let dir: string;
  let db: string;
  const coordinators: SwarmCoordinator[] = [];
  const make = async (): Promise<SwarmCoordinator> => {
    const c = new SwarmCoordinator({ memoryPath: db, backoffBaseMs: 10, killGraceMs: 200 });
    coordinators.push(c);
    await c.start();
    return c;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfn-v1-range-'));
    db = join(dir, 'memory.sqlite');
  });
  afterEach(async () => {
    await Promise.all(coordinators.splice(0).map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs exactly agents start..end-1 with their swarm indexes, tasks, task env and the swarm total; the status counts the range', async () => {
    const c = await make();
    const started: unknown[] = [];
    c.on('objective:started', (e) => started.push(e));
    const s = spec({
      tasks: Array.from({ length: 10 }, (_, i) => `task ${i}`),
      taskEnv: Array.from({ length: 10 }, (_, i) => ({ MY_FILE: `file-${i}` })),
      indexRange: { start: 3, end: 7 },
      agentCommand: ['sh', '-c', 'printf "%s %s %s %s %s" "$AGENT_INDEX" "$AGENT_ID" "$CFN_AGENTS_TOTAL" "$MY_FILE" "$(cat)"'],
    });
    const result = await c.executeObjective(s);
    expect(result.status).toMatchObject({ status: 'completed', deliveryRate: 100, agents: { total: 4, completed: 4, failed: 0 } });
    expect(result.responses.map((r) => [r.index, r.agentId, r.output])).toEqual(
      [3, 4, 5, 6].map((i) => [i, `agent-${i}`, `${i} agent-${i} 10 file-${i} task ${i}`]),
    );
    expect(started).toEqual([expect.objectContaining({ agents: 4, alreadyFinal: 0 })]);
    expect((await c.listAgents(s.id))?.map((a) => [a.index, a.state])).toEqual([3, 4, 5, 6].map((i) => [i, 'completed']));
    expect(await c.getAgentState(s.id, 7)).toBeUndefined();
    expect(await c.getSwarmStatus(s.id)).toMatchObject({ status: 'completed', agents: { total: 4, completed: 4, failed: 0 } });
    // Checkpointed under the range's own key.
    expect(c.listResumableObjectives()).toEqual([]);
    expect(c.memory.getObjective('shardy@3-7')?.status).toBe('completed');
    expect(c.memory.getObjective('shardy')).toBeUndefined();
  });

  it('completed and failed indexes inside the range count and do not run; outside it they are refused', async () => {
    const c = await make();
    const result = await c.executeObjective(
      spec({
        agents: 20,
        indexRange: { start: 10, end: 15 },
        completedIndexes: [10, 11],
        failedIndexes: [13],
        agentCommand: ['sh', '-c', '[ "$AGENT_INDEX" -ne 14 ]'],
      }),
    );
    expect(result.responses.map((r) => [r.index, r.status])).toEqual([
      [12, 'completed'],
      [14, 'failed'],
    ]);
    expect(result.status).toMatchObject({ status: 'completed', deliveryRate: 60, agents: { total: 5, completed: 3, failed: 2 } });
    await expect(c.executeObjective(spec({ id: 'other', indexRange: { start: 3, end: 7 }, completedIndexes: [2] }))).rejects.toThrow(
      "invalid objective: completedIndexes: 2 is outside the run's range 3..6",
    );
    await expect(c.executeObjective(spec({ id: 'other', indexRange: { start: 5, end: 11 } }))).rejects.toThrow(
      'invalid objective: indexRange: expected integers with 0 <= start < end <= agents (10), got {start: 5, end: 11}',
    );
  });

  it('two shards of one objective on one SQLite file at once: each completes with its own counts, checkpoint and owner', async () => {
    const [a, b] = [await make(), await make()];
    const cmd = ['sh', '-c', 'sleep 0.05; echo "$AGENT_INDEX"'];
    const [ra, rb] = await Promise.all([
      a.executeObjective(spec({ indexRange: { start: 0, end: 5 }, agentCommand: cmd })),
      b.executeObjective(spec({ indexRange: { start: 5, end: 10 }, agentCommand: cmd })),
    ]);
    expect(ra.status).toMatchObject({ status: 'completed', agents: { total: 5, completed: 5, failed: 0 } });
    expect(rb.status).toMatchObject({ status: 'completed', agents: { total: 5, completed: 5, failed: 0 } });
    expect(ra.responses.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
    expect(rb.responses.map((r) => r.index)).toEqual([5, 6, 7, 8, 9]);
    const conn = new DatabaseSync(db, { readOnly: true });
    try {
      expect(
        conn
          .prepare('SELECT id, status, owner FROM objectives ORDER BY id')
          .all()
          .map((r) => ({ ...r })),
      ).toEqual([
        { id: 'shardy@0-5', status: 'completed', owner: null },
        { id: 'shardy@5-10', status: 'completed', owner: null },
      ]);
      expect(
        conn
          .prepare('SELECT objective_id AS o, COUNT(*) AS n FROM responses GROUP BY objective_id ORDER BY o')
          .all()
          .map((r) => ({ ...r })),
      ).toEqual([
        { o: 'shardy@0-5', n: 5 },
        { o: 'shardy@5-10', n: 5 },
      ]);
    } finally {
      conn.close();
    }
  });

  it('resumes a range from its checkpoint: agents with a final response are not run again, a sibling shard is not disturbed', async () => {
    const runs = join(dir, 'runs');
    const gate = join(dir, 'gate');
    // Every attempt leaves a file; agents 8 and 9 wait for the gate (past the first run's deadline).
    const cmd = [
      'sh',
      '-c',
      'mkdir -p "$0" && : >"$0/$AGENT_INDEX.$$"; if [ "$AGENT_INDEX" -ge 8 ]; then while [ ! -e "$1" ]; do sleep 0.05; done; fi; echo "$AGENT_INDEX"',
      runs,
      gate,
    ];
    const c = await make();
    const shard = spec({ indexRange: { start: 5, end: 10 }, agentCommand: cmd, timeoutSeconds: 1.5 });
    // A range being run is not resumable.
    let whileRunning: string[] | undefined;
    c.once('objective:started', () => (whileRunning = c.listResumableObjectives()));
    const first = await c.executeObjective(shard);
    expect(whileRunning).toEqual([]);
    expect(first.status).toMatchObject({ status: 'timeout', agents: { total: 5, completed: 3, failed: 0 } });
    expect(c.listResumableObjectives()).toEqual(['shardy@5-10']);
    // The sibling shard on the same file runs to completion in between.
    const sibling = await c.executeObjective(spec({ indexRange: { start: 0, end: 5 }, agentCommand: ['true'] }));
    expect(sibling.status).toMatchObject({ status: 'completed', agents: { total: 5, completed: 5, failed: 0 } });
    writeFileSync(gate, '');
    const before = new Set(readdirSync(runs));
    const second = await c.resumeObjective('shardy@5-10');
    expect(second.status).toMatchObject({ status: 'completed', deliveryRate: 100, agents: { total: 5, completed: 5, failed: 0 } });
    expect(second.responses.map((r) => r.index)).toEqual([5, 6, 7, 8, 9]);
    // Only 8 and 9 ran again.
    const again = readdirSync(runs)
      .filter((f) => !before.has(f))
      .map((f) => Number(f.split('.')[0]))
      .sort();
    expect(again).toEqual([8, 9]);
    expect(existsSync(db)).toBe(true);
    expect(c.listResumableObjectives()).toEqual([]);
  });
});
