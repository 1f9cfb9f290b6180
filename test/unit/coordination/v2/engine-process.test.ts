// engine-process.ts on real processes: the engine's arguments, its process
// group (stderr tail, exit code, stop with TERM then KILL) and the strays it
// leaves behind.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineProcess, engineArgs, killStrays, lastLine, STDERR_TAIL_BYTES } from '../../../../operator/coordination/v2/engine-process.js';
import { groupRuns, readProc } from '../../../../operator/util/proc.js';
import { objectiveSpec } from '../../../helpers/objective-spec.js';

jest.setTimeout(30_000);

const where = { bashDir: '/opt/cfn/bash', shmPath: '/dev/shm/x' };
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp('/dev/shm/cfn-test-engine-process-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A bash script in the test directory. */
async function script(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `set -euo pipefail\n${body}\n`);
  return path;
}

const alive = async (pid: number) => {
  const state = (await readProc(pid))?.state;
  return state !== undefined && state !== 'Z';
};

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i += 1) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('engineArgs', () => {
  it('every field of the spec as an option of `coordinator-cli.sh run`, the agent argv after --', () => {
    const spec = objectiveSpec({ id: 'sw-1', agents: 10, agentCommand: ['sh', '-c', 'echo $1; rm -rf /', 'x'], noRetryExitCodes: [4, 9] });
    expect(engineArgs(spec, where)).toEqual([
      '/opt/cfn/bash/coordinator-cli.sh',
      'run',
      '--keep',
      '--swarm-id',
      'sw-1',
      '--shm-path',
      '/dev/shm/x',
      '--agents',
      '10',
      '--concurrency',
      '4',
      '--agent-timeout',
      '30',
      '--retries',
      '0',
      '--timeout',
      '60',
      '--max-output',
      '65536',
      '--no-retry-exit-codes',
      '4,9',
      '--',
      'sh',
      '-c',
      'echo $1; rm -rf /',
      'x',
    ]);
  });

  it('--index-range only for a part of the swarm; earlier final indexes compressed', () => {
    const spec = (over = {}) => objectiveSpec({ agents: 10, ...over });
    expect(engineArgs(spec({ indexRange: { start: 3, end: 7 } }), where).join(' ')).toContain('--index-range 3-7 ');
    expect(engineArgs(spec({ indexRange: { start: 0, end: 10 } }), where)).not.toContain('--index-range');
    expect(engineArgs(spec(), where)).not.toContain('--index-range');
    const resumed = engineArgs(spec({ completedIndexes: [0, 1, 2, 7], failedIndexes: [4] }), where).join(' ');
    expect(resumed).toContain('--completed-indexes 0-2,7 --failed-indexes 4 --');
  });
});

describe('lastLine', () => {
  it('the last non-blank line, trimmed', () => {
    expect(lastLine('a\n  b c  \n\n \n')).toBe('b c');
    expect(lastLine('')).toBe('');
  });
});

describe('EngineProcess', () => {
  it('runs bash with exactly the env given; keeps the tail of stderr and reports the exit code', async () => {
    const path = await script(
      'exit7.sh',
      `printf '%s' "$CFN_X" >&2; head -c ${STDERR_TAIL_BYTES + 100} /dev/zero | tr '\\0' y >&2; echo >&2; echo "last: \${HOME:-none}" >&2; exit 7`,
    );
    const chunks: string[] = [];
    const engine = new EngineProcess('bash', [path], { CFN_X: 'start-marker', PATH: process.env.PATH }, (c) => chunks.push(c));
    expect(await engine.exited()).toEqual({ exitCode: 7, signal: undefined });
    expect(engine.stderrTail).toHaveLength(STDERR_TAIL_BYTES);
    expect(engine.stderrTail).not.toContain('start-marker');
    expect(lastLine(engine.stderrTail)).toBe('last: none');
    expect(chunks.join('')).toContain('start-marker');
  });

  it('stop(): TERM to the whole group; a group that ignores TERM is KILLed after the grace period; nothing of it runs after', async () => {
    const pidFile = join(dir, 'child.pid');
    const path = await script('stubborn.sh', `trap '' TERM; sleep 30 & echo $! > ${pidFile}; while :; do sleep 0.05; done`);
    const engine = new EngineProcess('bash', [path], { PATH: process.env.PATH });
    let child = 0;
    await until('the engine child', async () => {
      child = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
      return child > 0;
    });
    const leader = (await readProc(child))?.pgid as number;
    expect(leader).toBeGreaterThan(0);
    expect(leader).not.toBe((await readProc(process.pid))?.pgid);
    const started = Date.now();
    await engine.stop(300);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect((await engine.exited()).signal).toBe('SIGKILL');
    await until('the group gone', async () => !(await groupRuns(leader)));
    expect(await alive(child)).toBe(false);
  });

  it('stop(): an engine that ends on TERM ends at once, its group with it', async () => {
    const path = await script('polite.sh', `sleep 30 & wait`);
    const engine = new EngineProcess('bash', [path], { PATH: process.env.PATH });
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await engine.stop(10_000);
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await engine.exited()).signal).toBe('SIGTERM');
  });

  it('signal() after the engine exited does nothing (the pid may name another process by then)', async () => {
    const engine = new EngineProcess('bash', ['-c', 'exit 0'], { PATH: process.env.PATH });
    await engine.exited();
    expect(() => engine.signal('SIGKILL')).not.toThrow();
  });
});

describe('killStrays', () => {
  it("KILLs the run's agents (SWARM_ID) and scripts (an argument under the root), not another run's", async () => {
    const spec = objectiveSpec();
    const other = objectiveSpec();
    const root = join(dir, spec.id);
    const agent = spawn('sleep', ['30'], { env: { ...process.env, SWARM_ID: spec.id }, stdio: 'ignore' });
    const engineScript = spawn('sh', ['-c', 'sleep 30', join(root, 'x.sh')], { stdio: 'ignore' });
    const bystander = spawn('sleep', ['30'], { env: { ...process.env, SWARM_ID: other.id }, stdio: 'ignore' });
    try {
      await until('the processes', async () => (await alive(agent.pid as number)) && (await alive(engineScript.pid as number)));
      const killed = await killStrays(spec, root);
      expect(killed.sort()).toEqual([agent.pid, engineScript.pid].sort());
      await until('the strays gone', async () => !(await alive(agent.pid as number)) && !(await alive(engineScript.pid as number)));
      expect(await alive(bystander.pid as number)).toBe(true);
      expect(await killStrays(spec, root)).toEqual([]);
    } finally {
      for (const p of [agent, engineScript, bystander]) p.kill('SIGKILL');
    }
  });
});
