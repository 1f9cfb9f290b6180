import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwarmCoordinator } from '../../../operator/coordination/v1/swarm-coordinator.js';
import { BashCoordinator } from '../../../operator/coordination/v2/bash-coordinator.js';
import type { Coordinator } from '../../../operator/coordination/types.js';
import { createLogger } from '../../../operator/observability/logger.js';
import { processesWithEnv } from '../../../operator/util/proc.js';
import { objectiveSpec } from '../../helpers/objective-spec.js';

jest.setTimeout(60_000);

let dir: string;
let shm: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cfn-strays-'));
  shm = await mkdtemp('/dev/shm/cfn-test-strays-');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(shm, { recursive: true, force: true });
});

/** The processes carrying SWARM_ID=ID once they have had up to 2 s to die (SIGKILL is delivered asynchronously). */
async function survivors(id: string): Promise<number[]> {
  for (let i = 0; i < 40; i += 1) {
    const left = await processesWithEnv('SWARM_ID', id);
    if (left.length === 0) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
  return processesWithEnv('SWARM_ID', id);
}

// Each agent answers at once and leaves two processes running: one in its own
// process group and one in a new session (setsid), as an agent's dev server or
// watcher might.
const leaveBehind = ['sh', '-c', 'sleep 300 & setsid sleep 300 & echo done'];

const engines: [string, () => Coordinator][] = [
  ['V1', () => new SwarmCoordinator({ memoryPath: join(dir, `${Date.now()}-${Math.random()}.sqlite`) })],
  ['V2', () => new BashCoordinator({ shmPath: shm, logger: createLogger({ name: 'test', level: 'silent' }) })],
];

describe.each(engines)('%s: what agents leave running ends with the run', (_name, make) => {
  it('kills every process an agent left behind, also past a setsid, and counts the agents as completed', async () => {
    const c = make();
    await c.start();
    try {
      const spec = objectiveSpec({ agents: 4, agentCommand: leaveBehind });
      const result = await c.executeObjective(spec);
      expect(result.status).toMatchObject({ status: 'completed', agents: { total: 4, completed: 4, failed: 0 } });
      expect(await survivors(spec.id)).toEqual([]);
    } finally {
      await c.stop();
    }
  });

  it('with an index range, leaves another shard of the same swarm running', async () => {
    const c = make();
    await c.start();
    const spec = objectiveSpec({ agents: 4, agentCommand: leaveBehind, indexRange: { start: 0, end: 2 } });
    try {
      // Shard 1's agents, running beside this run: processes with the swarm's id and their own indexes.
      const other = [2, 3].map((i) =>
        spawn('sleep', ['300'], { env: { ...process.env, SWARM_ID: spec.id, AGENT_INDEX: String(i) }, stdio: 'ignore', detached: true }),
      );
      try {
        const result = await c.executeObjective(spec);
        expect(result.status).toMatchObject({ status: 'completed', agents: { total: 2, completed: 2 } });
        // Only shard 1's two processes remain.
        expect((await survivors(spec.id)).sort()).toEqual(other.map((p) => p.pid).sort());
      } finally {
        for (const p of other) p.kill('SIGKILL');
      }
      expect(await survivors(spec.id)).toEqual([]);
    } finally {
      await c.stop();
    }
  });
});
