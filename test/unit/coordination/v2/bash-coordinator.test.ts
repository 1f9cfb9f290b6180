// End to end against the real bash engine on the real /dev/shm: real agent
// processes, real files, nothing mocked.
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectiveSpec } from '../../../../operator/coordination/types.js';
import { BashCoordinator } from '../../../../operator/coordination/v2/bash-coordinator.js';
import { CoordinatorUnavailableError } from '../../../../operator/coordination/v2/engine-preflight.js';
import { engineArgs } from '../../../../operator/coordination/v2/engine-process.js';
import { InvalidSpecError } from '../../../../operator/coordination/v2/spec.js';
import { createLogger } from '../../../../operator/observability/logger.js';
import { processesWithArgUnder, processesWithEnv } from '../../../../operator/util/proc.js';
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

const spec = (overrides: Partial<ObjectiveSpec> = {}): ObjectiveSpec => objectiveSpec({ concurrency: 16, ...overrides });

async function expectNoTrace(c: BashCoordinator, id: string): Promise<void> {
  expect(await processesWithEnv('SWARM_ID', id)).toEqual([]);
  expect(await processesWithArgUnder(join(c.shmPath, id))).toEqual([]);
  expect(existsSync(join(c.shmPath, id))).toBe(false);
}

beforeAll(async () => {
  shm = await mkdtemp('/dev/shm/cfn-test-v2-');
});

afterEach(async () => {
  await Promise.all(coordinators.splice(0).map((c) => c.stop()));
});

afterAll(async () => {
  await rm(shm, { recursive: true, force: true });
});

describe('BashCoordinator', () => {
  it('runs 1 agent: the response is the objective echoed by cat', async () => {
    const c = make();
    await c.start();
    const s = spec({ description: 'hello\nworld\n' });
    const result = await c.executeObjective(s);
    expect(result.status).toMatchObject({ objectiveId: s.id, status: 'completed', agents: { total: 1, completed: 1, failed: 0 }, deliveryRate: 100 });
    expect(result.responses).toHaveLength(1);
    expect(result.responses[0]).toMatchObject({
      agentId: 'agent-0',
      index: 0,
      status: 'completed',
      exitCode: 0,
      attempts: 1,
      output: 'hello\nworld\n',
      outputBytes: 12,
    });
    expect(await c.getSwarmStatus(s.id)).toEqual(result.status);
    expect(await c.getAgentState(s.id, 0)).toBe('completed');
    expect(await c.getAgentState(s.id, 1)).toBeUndefined();
    await expectNoTrace(c, s.id);
  });

  it('runs 300 agents (true, flat) with full delivery', async () => {
    const c = make();
    await c.start();
    const s = spec({ agents: 300, agentCommand: ['true'], concurrency: 64 });
    const seen: number[] = [];
    const events: string[] = [];
    c.on('response', (r) => seen.push(r.index));
    c.on('agent:completed', (e) => events.push(`${e.objectiveId}:${e.response.index}`));
    c.on('objective:started', (e) => events.push(`started:${e.agents}`));
    c.on('objective:completed', (e) => events.push(`completed:${e.status.status}`));
    const result = await c.executeObjective(s);
    expect(events[0]).toBe('started:300');
    expect(events[events.length - 1]).toBe('completed:completed');
    expect(events.length).toBe(302);
    expect(result.status.status).toBe('completed');
    expect(result.status.deliveryRate).toBe(100);
    expect(result.status.agents).toEqual({ total: 300, completed: 300, failed: 0 });
    expect(result.responses.map((r) => r.index)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(new Set(seen).size).toBe(300);
    await expectNoTrace(c, s.id);
  });

  it('runs 1000 agents (cat) with per-agent tasks and full delivery', async () => {
    const c = make();
    await c.start();
    const tasks = Array.from({ length: 1000 }, (_, i) => `task ${i}\n`);
    const s = spec({ agents: 1000, tasks, concurrency: 64 });
    const result = await c.executeObjective(s);
    expect(result.status).toMatchObject({ status: 'completed', deliveryRate: 100, agents: { total: 1000, completed: 1000, failed: 0 } });
    expect(result.responses).toHaveLength(1000);
    for (const r of result.responses) expect(r.output).toBe(`task ${r.index}\n`);
    await expectNoTrace(c, s.id);
  });

  it('reports failing agents with exit code, attempts (retries) and the last stderr line', async () => {
    const c = make();
    await c.start();
    const s = spec({
      agents: 6,
      retries: 1,
      agentCommand: ['sh', '-c', 'if [ $((AGENT_INDEX % 2)) -eq 0 ]; then echo ok; else echo first >&2; echo "boom $AGENT_INDEX" >&2; exit 3; fi'],
    });
    const result = await c.executeObjective(s);
    // Delivery is completed work: 3 of 6.
    expect(result.status).toMatchObject({ status: 'completed', deliveryRate: 50, agents: { total: 6, completed: 3, failed: 3 } });
    for (const r of result.responses) {
      if (r.index % 2 === 0) expect(r).toMatchObject({ status: 'completed', exitCode: 0, output: 'ok\n', attempts: 1 });
      else expect(r).toMatchObject({ status: 'failed', exitCode: 3, attempts: 2, error: `boom ${r.index}` });
    }
    expect(await c.getAgentState(s.id, 1)).toBe('failed');
    await expectNoTrace(c, s.id);
  });

  it('noRetryExitCodes: that exit code ends the agent after one attempt, others use every retry; resume skips completed and failed indexes', async () => {
    const c = make();
    await c.start();
    const s = spec({
      agents: 6,
      retries: 2,
      noRetryExitCodes: [4, 9],
      completedIndexes: [3],
      failedIndexes: [4, 5],
      agentCommand: ['sh', '-c', 'exit $(( AGENT_INDEX == 0 ? 4 : AGENT_INDEX == 1 ? 5 : AGENT_INDEX >= 3 ? 66 : 0 ))'],
    });
    expect(engineArgs(s, c)).toEqual(expect.arrayContaining(['--no-retry-exit-codes', '4,9', '--completed-indexes', '3', '--failed-indexes', '4-5']));
    const started = new Promise<unknown>((r) => c.once('objective:started', r));
    const result = await c.executeObjective(s);
    expect(await started).toMatchObject({ alreadyFinal: 3 });
    expect(result.responses.map((r) => [r.index, r.status, r.exitCode, r.attempts])).toEqual([
      [0, 'failed', 4, 1],
      [1, 'failed', 5, 3],
      [2, 'completed', 0, 1],
    ]);
    expect(result.status).toMatchObject({ status: 'completed', agents: { total: 6, completed: 2, failed: 4 }, deliveryRate: 33.3 });
    await expectNoTrace(c, s.id);
  });

  it('refuses an index both completed and failed, and exit codes outside 1-255', async () => {
    const c = make();
    await c.start();
    await expect(c.executeObjective(spec({ agents: 3, completedIndexes: [1], failedIndexes: [1] }))).rejects.toThrow(
      /failedIndexes: an index is both completed and failed/,
    );
    await expect(c.executeObjective(spec({ noRetryExitCodes: [256] }))).rejects.toThrow(/noRetryExitCodes/);
  });

  it('times out a hanging agent (killed, failed) while the others complete, leaving no process', async () => {
    const c = make();
    await c.start();
    const s = spec({
      agents: 4,
      agentTimeoutSeconds: 0.5,
      agentCommand: ['sh', '-c', 'if [ "$AGENT_INDEX" = 2 ]; then exec sleep 60; fi; echo done'],
    });
    const t0 = Date.now();
    const result = await c.executeObjective(s);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(result.status).toMatchObject({ status: 'completed', agents: { total: 4, completed: 3, failed: 1 } });
    expect(result.responses[2]).toMatchObject({ status: 'failed', index: 2 });
    await expectNoTrace(c, s.id);
  });

  it('passes tasks full of $(...), backticks, quotes and newlines byte for byte, never running them', async () => {
    const marker = join(shm, `pwned-${process.pid}`);
    const nasty = [
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `'"; touch ${marker}; echo "'`,
      `line1\nline2\r\n\ttab $HOME \${PATH} * ? ~ | & ; > ${marker} < /etc/passwd \\ end`,
      `é ü 中文 🚀 \u0001\u001b[31m`,
      '',
      '-n',
      `\n\n$(id)\n`,
    ];
    const c = make();
    await c.start();
    // stdin path (cat) and environment path (CFN_TASK, printed without interpretation)
    const viaStdin = await c.executeObjective(spec({ agents: nasty.length, tasks: nasty }));
    const viaEnv = await c.executeObjective(spec({ agents: nasty.length, tasks: nasty, agentCommand: ['sh', '-c', 'printf %s "$CFN_TASK"'] }));
    for (const result of [viaStdin, viaEnv]) {
      expect(result.status.agents.completed).toBe(nasty.length);
      for (const r of result.responses) {
        expect(r.output).toBe(nasty[r.index]);
        expect(r.outputBytes).toBe(Buffer.byteLength(nasty[r.index] as string));
      }
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('resumes: completed indexes are counted as delivered and not re-run', async () => {
    const c = make();
    await c.start();
    const s = spec({ agents: 10, completedIndexes: [0, 1, 2, 7], agentCommand: ['sh', '-c', 'echo "$AGENT_INDEX"'] });
    expect(engineArgs(s, c)).toContain('0-2,7');
    const result = await c.executeObjective(s);
    expect(result.status).toMatchObject({ status: 'completed', deliveryRate: 100, agents: { total: 10, completed: 10, failed: 0 } });
    expect(result.responses.map((r) => r.index)).toEqual([3, 4, 5, 6, 8, 9]);
    for (const r of result.responses) expect(r.output).toBe(`${r.index}\n`);
    await expectNoTrace(c, s.id);
  });

  it('a malformed file dropped into responses/ mid-run is quarantined and counted; the run completes', async () => {
    const c = make();
    await c.start();
    const s = spec({ agents: 5, agentCommand: ['sleep', '0.3'] });
    const quarantined: string[] = [];
    c.on('quarantine', (q) => quarantined.push(q.reason));
    c.on('objective:started', () => {
      const dir = join(shm, s.id, 'responses');
      void mkdir(dir, { recursive: true }).then(() => writeFile(join(dir, 'agent-1000.json'), '{"agentId":"agent-1000",'));
    });
    const result = await c.executeObjective(s);
    expect(result.status).toMatchObject({ status: 'completed', deliveryRate: 100 });
    expect(result.responses).toHaveLength(5);
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]).toMatch(/^not JSON/);
    await expectNoTrace(c, s.id);
  });

  it('bounds output at maxOutputBytes and turns invalid UTF-8 into U+FFFD', async () => {
    const c = make();
    await c.start();
    const full = Array.from({ length: 30000 }, (_, i) => `${i + 1}\n`).join('');
    const big = await c.executeObjective(spec({ agents: 1, maxOutputBytes: 1000, agentCommand: ['seq', '1', '30000'] }));
    expect(big.responses[0]).toMatchObject({ status: 'completed', outputTruncated: true, outputBytes: Buffer.byteLength(full) });
    expect(big.responses[0]?.output).toBe(full.slice(0, 1000));
    const bad = await c.executeObjective(spec({ agents: 1, agentCommand: ['printf', 'a\\377b\\n'] }));
    expect(bad.responses[0]).toMatchObject({ output: 'a\uFFFDb\n', outputBytes: 4, outputTruncated: false });
  });

  // Regression: the engine enables bash loadable builtins (sleep, rm, ln, mkdir...);
  // an agent command with one of those names ran the builtin inside a forked shell
  // instead of the program (different semantics, no agent process of its own).
  it('runs the real program for an agent command named like a loaded bash builtin', async () => {
    const c = make();
    await c.start();
    const result = await c.executeObjective(spec({ agents: 2, agentCommand: ['mkdir', '--version'] }));
    for (const r of result.responses) {
      expect(r.status).toBe('completed');
      expect(r.output).toMatch(/^mkdir \(GNU coreutils\)/);
    }
  });

  it('refuses an invalid spec before touching the disk', async () => {
    const c = make();
    await c.start();
    await expect(c.executeObjective(spec({ id: '../escape' }))).rejects.toThrow(InvalidSpecError);
    await expect(c.executeObjective(spec({ agentCommand: [] }))).rejects.toThrow(/agent command is empty/);
    await expect(c.executeObjective(spec({ agents: 0 }))).rejects.toThrow(/agents/);
    expect(existsSync(join(shm, '..', 'escape'))).toBe(false);
  });

  it('rejects executeObjective before start()', async () => {
    await expect(make().executeObjective(spec())).rejects.toThrow(/not started/);
  });

  it('stop() during a run ends every process and removes the root', async () => {
    const c = make({ stopGraceMs: 2000 });
    await c.start();
    const s = spec({ agents: 20, agentCommand: ['sleep', '60'], concurrency: 20 });
    const running = c.executeObjective(s);
    // Wait for everything asserted below: the processes exist a moment before the engine records agent 0 as running.
    const settled = async () => (await processesWithEnv('SWARM_ID', s.id)).length >= 20 && (await c.getAgentState(s.id, 0)) === 'running';
    for (let i = 0; i < 200 && !(await settled()); i += 1) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await processesWithEnv('SWARM_ID', s.id)).length).toBeGreaterThanOrEqual(20);
    expect(await c.getSwarmStatus(s.id)).toMatchObject({ status: 'running' });
    expect(await c.getAgentState(s.id, 0)).toBe('running');
    const t0 = Date.now();
    await c.stop();
    expect(Date.now() - t0).toBeLessThan(10_000);
    const result = await running;
    expect(result.status.status).toBe('stopped');
    await expectNoTrace(c, s.id);
    expect(await readdir(shm)).not.toContain(s.id);
  });

  it('stop() mid-run reports the agents it cut short (started, no response) and only those', async () => {
    const c = make({ stopGraceMs: 2000 });
    await c.start();
    const ran = join(shm, `ran-${process.pid}-stopped-mid-run.log`);
    // Agents 0-2 answer at once; the others start, write their index and hang.
    const s = spec({ agents: 12, concurrency: 6, agentCommand: ['sh', '-c', `echo "$AGENT_INDEX" >> ${ran}; [ "$AGENT_INDEX" -lt 3 ] || sleep 60`] });
    const running = c.executeObjective(s);
    const started = async () => (await readFile(ran, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
    for (let i = 0; i < 400 && (await started()).length < 9; i += 1) await new Promise((r) => setTimeout(r, 25));
    // Wait for the three quick agents' responses, so the stop finds them delivered.
    for (let i = 0; i < 400 && (await c.listAgents(s.id))!.filter((a) => a.state === 'completed').length < 3; i += 1)
      await new Promise((r) => setTimeout(r, 25));
    await c.stop();
    const result = await running;
    expect(result.status.status).toBe('stopped');
    const delivered = new Set(result.responses.map((r) => r.index));
    const cutShort = (await started()).filter((i) => !delivered.has(i)).sort((a, b) => a - b);
    expect(cutShort.length).toBeGreaterThanOrEqual(6);
    expect(result.interruptedIndexes).toEqual(cutShort);
    await expectNoTrace(c, s.id);
  });

  it('refuses a second concurrent run of the same objective id', async () => {
    const c = make();
    await c.start();
    const s = spec({ agents: 2, agentCommand: ['sleep', '0.5'] });
    const [first, second] = await Promise.allSettled([c.executeObjective(s), c.executeObjective(s)]);
    expect(first.status).toBe('fulfilled');
    expect(second.status).toBe('rejected');
    if (second.status === 'rejected') expect(String(second.reason)).toMatch(/already running/);
    await expectNoTrace(c, s.id);
  });

  it('refuses to run over an existing swarm root', async () => {
    const c = make();
    await c.start();
    const s = spec();
    await mkdir(join(shm, s.id));
    await expect(c.executeObjective(s)).rejects.toThrow(/already exists/);
    // someone else's root is left alone
    expect(existsSync(join(shm, s.id))).toBe(true);
    await rm(join(shm, s.id), { recursive: true });
  });
});

describe('BashCoordinator start() rejections', () => {
  it('rejects precisely when bash is not on PATH', async () => {
    const c = make({ env: { ...process.env, PATH: '/nonexistent-bin' } });
    await expect(c.start()).rejects.toThrow(CoordinatorUnavailableError);
    await expect(c.start()).rejects.toThrow('bash not found: no executable "bash" on PATH=/nonexistent-bin');
    const health = await c.healthCheck();
    expect(health).toMatchObject({ healthy: false, reason: 'bash not found: no executable "bash" on PATH=/nonexistent-bin' });
  });

  it('rejects precisely when the engine scripts are missing', async () => {
    const c = make({ bashDir: '/nonexistent-engine' });
    await expect(c.start()).rejects.toThrow('engine script missing: /nonexistent-engine/coordinator-cli.sh');
  });

  it('rejects precisely when the shm path cannot be created (under a regular file)', async () => {
    const file = join(shm, `file-${process.pid}`);
    await writeFile(file, 'x');
    const c = make({ shmPath: join(file, 'cfn') });
    const err = await c.start().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(CoordinatorUnavailableError);
    expect(err?.message).toContain(join(file, 'cfn'));
    expect((await c.healthCheck()).healthy).toBe(false);
  });

  it('rejects precisely when the shm path is on a read-only tmpfs', async () => {
    const mnt = await mkdtemp('/tmp/cfn-test-ro-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m,mode=0700', 'tmpfs', mnt]);
    try {
      const c = make({ shmPath: join(mnt, 'cfn') });
      const err = await c.start().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(CoordinatorUnavailableError);
      expect(err?.message).toContain(join(mnt, 'cfn'));
      expect(err?.message).toMatch(/read-only|not writable|cannot create/i);
      const health = await c.healthCheck();
      expect(health.healthy).toBe(false);
      expect(health.reason).toContain(mnt);

      // the shm dir exists already, but the filesystem went read-only
      execFileSync('mount', ['-o', 'remount,rw', mnt]);
      await mkdir(join(mnt, 'cfn'));
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      const existing = await make({ shmPath: join(mnt, 'cfn') })
        .start()
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      expect(existing).toBeInstanceOf(CoordinatorUnavailableError);
      expect(existing?.message).toMatch(new RegExp(`${join(mnt, 'cfn')}.*(read-only|not writable)`, 'i'));
    } finally {
      execFileSync('umount', [mnt]);
      await rm(mnt, { recursive: true, force: true });
    }
  });
});
