import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BridgeInputError, writeObjective } from '../../../../operator/coordination/v2/message-bridge.js';

const NASTY = 'a $(touch /tmp/pwned) `id` "dq" \'sq\' \\ back\nline2\r\n\ttab é ü 中文 🚀 ; | & > < * ? ~ $HOME ${X} \u0001\n\n';

describe('message bridge', () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp('/dev/shm/cfn-test-bridge-');
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('writes per-task env as task-env/<i>: NAME=VALUE entries each ended by NUL, only for agents that have some', async () => {
    const root = join(base, 'swarm-env');
    await writeObjective(root, { objective: 'o', tasks: ['a', 'b', 'c'], taskEnv: [{ FILE: 'a.sh', X: NASTY }, undefined, {}] });
    expect(await readFile(join(root, 'task-env', '0'))).toEqual(Buffer.from(`FILE=a.sh\0X=${NASTY}\0`, 'utf8'));
    expect(await readdir(join(root, 'task-env'))).toEqual(['0']);
    expect((await stat(join(root, 'task-env'))).mode & 0o777).toBe(0o700);
  });

  it('refuses an engine variable or a NUL in per-task env', async () => {
    await expect(writeObjective(join(base, 'e1'), { objective: 'o', taskEnv: [{ CFN_TASK: 'x' }] })).rejects.toThrow(
      new BridgeInputError('task 0: env name CFN_TASK belongs to the engine (AGENT_ID, AGENT_INDEX, OBJECTIVE_ID, SWARM_ID and CFN_*)'),
    );
    await expect(writeObjective(join(base, 'e2'), { objective: 'o', taskEnv: [undefined, { A: 'x\0y' }] })).rejects.toThrow(/task 1 env A contains a NUL byte/);
  });

  it('writes objective and tasks byte-exact with metacharacters, newlines and non-ASCII', async () => {
    const root = join(base, 'swarm-a');
    const tasks = [NASTY, undefined, 'plain', '', NASTY.repeat(100)];
    await writeObjective(root, { objective: NASTY, tasks });
    expect(await readFile(join(root, 'objective.txt'))).toEqual(Buffer.from(NASTY, 'utf8'));
    expect(await readFile(join(root, 'tasks', '0'))).toEqual(Buffer.from(NASTY, 'utf8'));
    expect(await readFile(join(root, 'tasks', '2'), 'utf8')).toBe('plain');
    expect(await readFile(join(root, 'tasks', '3'), 'utf8')).toBe('');
    expect(await readFile(join(root, 'tasks', '4'))).toEqual(Buffer.from(NASTY.repeat(100), 'utf8'));
    // absent task -> no file, the engine falls back to objective.txt
    expect((await readdir(join(root, 'tasks'))).sort()).toEqual(['0', '2', '3', '4']);
    expect((await stat(root)).mode & 0o777).toBe(0o700);
    expect((await stat(join(root, 'tasks'))).mode & 0o777).toBe(0o700);
  });

  it('writes 1000 tasks', async () => {
    const root = join(base, 'many');
    const tasks = Array.from({ length: 1000 }, (_, i) => `task ${i}\n`);
    await writeObjective(root, { objective: 'o', tasks });
    expect((await readdir(join(root, 'tasks'))).length).toBe(1000);
    expect(await readFile(join(root, 'tasks', '999'), 'utf8')).toBe('task 999\n');
  });

  it('refuses a NUL byte (cannot travel in CFN_TASK) before writing anything', async () => {
    const root = join(base, 'nul');
    await expect(writeObjective(root, { objective: 'ok', tasks: ['a', 'b\0c'] })).rejects.toThrow(BridgeInputError);
    await expect(writeObjective(root, { objective: 'ok', tasks: ['a', 'b\0c'] })).rejects.toThrow(/task 1 contains a NUL/);
    await expect(readdir(root)).rejects.toThrow(/ENOENT/);
  });
});
