import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import { ResponseCheckpointStore } from '../../../../operator/coordination/v1/response-checkpoint-store.js';
import { ownerTokenOf } from '../../../../operator/coordination/v1/process-owner.js';
import { SwarmCoordinator } from '../../../../operator/coordination/v1/swarm-coordinator.js';
import type { ObjectiveResult, ObjectiveSpec } from '../../../../operator/coordination/types.js';
import { signalGroup } from '../../../../operator/util/proc.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures');
const nodeArgs = ['--experimental-transform-types', '--no-warnings', '--import', join(fixtures, 'ts-loader.mjs'), join(fixtures, 'run-coordinator.ts')];

function deliveredInDb(db: string, id: string): number {
  if (!existsSync(db)) return 0;
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    const row = conn.prepare('SELECT COUNT(*) AS n FROM responses WHERE objective_id = ?').get(id) as { n: number } | undefined;
    return Number(row?.n ?? 0);
  } catch {
    return 0; // schema not created yet
  } finally {
    conn.close();
  }
}

/** Running (a zombie waiting for an absent reaper counts as dead). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('V1 resume after a crash', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfn-v1-resume-'));
  });
  afterEach(() => {
    // Agents held by the test outlive the SIGKILLed coordinator: end their groups.
    const pidDir = join(dir, 'pids');
    if (existsSync(pidDir)) {
      for (const f of readdirSync(pidDir)) {
        signalGroup(Number(readFileSync(join(pidDir, f), 'utf8').trim()), 'SIGKILL');
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('a coordinator SIGKILLed mid-run resumes on the same database without re-running delivered agents', async () => {
    const db = join(dir, 'memory.sqlite');
    const marker = join(dir, 'marker');
    const release = join(dir, 'release');
    mkdirSync(join(dir, 'pids'));
    const env = { ...process.env, MARKER_FILE: marker, RELEASE_FILE: release, PID_DIR: join(dir, 'pids'), HOLD_FROM: '6' };
    const spec: ObjectiveSpec = {
      id: 'crash-me',
      description: 'resume test',
      agents: 10,
      agentCommand: ['sh', join(fixtures, 'marker-agent.sh')],
      agentTimeoutSeconds: 120,
      retries: 0,
      concurrency: 10,
      timeoutSeconds: 300,
      maxOutputBytes: 1024,
    };
    const specFile = join(dir, 'spec.json');
    writeFileSync(specFile, JSON.stringify(spec));

    // Run 1: agents 0-5 deliver, 6-9 hang; kill the coordinator once 6 responses are committed.
    const first = spawn(process.execPath, [...nodeArgs, db, specFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    first.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitFor(() => deliveredInDb(db, 'crash-me') === 6 || first.exitCode !== null, 30_000);
    expect(stderr).toBe('');
    await waitFor(() => readdirSync(join(dir, 'pids')).length === 4, 10_000);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('close', r));
    expect(readFileSync(marker, 'utf8').trim().split('\n').sort()).toEqual(['0', '1', '2', '3', '4', '5']);

    // The held agents outlived their coordinator.
    const heldPids = readdirSync(join(dir, 'pids')).map((f) => Number(readFileSync(join(dir, 'pids', f), 'utf8').trim()));
    expect(heldPids.filter(alive)).toHaveLength(4);

    // Run 2: a fresh coordinator process on the same database resumes.
    writeFileSync(release, '');
    const second = spawnSync(process.execPath, [...nodeArgs, db, '--resume=crash-me'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(second.stderr).toBe('');
    expect(second.status).toBe(0);
    const result = JSON.parse(second.stdout) as ObjectiveResult;
    expect(result.status).toMatchObject({ status: 'completed', agents: { total: 10, completed: 10, failed: 0 }, deliveryRate: 100 });
    expect(result.responses.map((r) => r.output)).toEqual(Array.from({ length: 10 }, (_, i) => `delivered ${i}`));

    // The resume killed the orphans of the dead coordinator before re-running their agents.
    expect(heldPids.filter(alive)).toEqual([]);

    // Every agent delivered exactly once across both runs.
    const lines = readFileSync(marker, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines.map(Number).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  }, 90_000);

  it('a stopped objective resumes in-process from the database too', async () => {
    const db = join(dir, 'memory.sqlite');
    const c1 = new SwarmCoordinator({ memoryPath: db, killGraceMs: 100 });
    await c1.start();
    const spec: ObjectiveSpec = {
      id: 'stop-me',
      description: 'x',
      agents: 3,
      agentCommand: ['sh', '-c', 'if [ "$AGENT_INDEX" = 2 ] && [ ! -e "$0.go" ]; then sleep 30; fi; printf "%s" "$AGENT_INDEX"', join(dir, 'flag')],
      agentTimeoutSeconds: 60,
      retries: 0,
      concurrency: 3,
      timeoutSeconds: 120,
      maxOutputBytes: 100,
    };
    const running = c1.executeObjective(spec);
    await waitFor(() => deliveredInDb(db, 'stop-me') === 2, 10_000);
    await c1.stop();
    const stopped = await running;
    expect(stopped.status).toMatchObject({ status: 'stopped', agents: { completed: 2 } });

    writeFileSync(join(dir, 'flag.go'), '');
    const c2 = new SwarmCoordinator({ memoryPath: db });
    await c2.start();
    try {
      expect(c2.listResumableObjectives()).toEqual(['stop-me']);
      const events: number[] = [];
      c2.bus.subscribe('agent:started', (e) => events.push(e.index));
      const resumed = await c2.resumeObjective('stop-me');
      expect(events).toEqual([2]);
      expect(resumed.status).toMatchObject({ status: 'completed', agents: { completed: 3 } });
      expect(resumed.responses.map((r) => r.output)).toEqual(['0', '1', '2']);
      expect(c2.listResumableObjectives()).toEqual([]);
    } finally {
      await c2.stop();
    }
  }, 30_000);

  it('refuses to run an objective another live coordinator owns, and takes over once it is dead', async () => {
    const db = join(dir, 'memory.sqlite');
    const spec: ObjectiveSpec = {
      id: 'owned',
      description: 'x',
      agents: 2,
      agentCommand: ['true'],
      agentTimeoutSeconds: 10,
      retries: 0,
      concurrency: 2,
      timeoutSeconds: 30,
      maxOutputBytes: 100,
    };
    // Stand-in for another coordinator process: a live process whose token owns the objective.
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    const mm = new ResponseCheckpointStore(db);
    mm.open();
    mm.beginObjective(spec, ownerTokenOf(other.pid!) ?? null);
    mm.close();
    const c = new SwarmCoordinator({ memoryPath: db });
    await c.start();
    try {
      await expect(c.executeObjective(spec)).rejects.toThrow(`objective owned is being run by another coordinator (process ${other.pid})`);
      other.kill('SIGKILL');
      await new Promise((r) => other.once('close', r));
      const result = await c.executeObjective(spec);
      expect(result.status).toMatchObject({ status: 'completed', deliveryRate: 100 });
    } finally {
      other.kill('SIGKILL');
      await c.stop();
    }
  });
});
