// TS -> bash: the objective and per-agent tasks go into the swarm root as raw
// bytes (objective.txt, tasks/<i>), each written atomically so the engine never
// reads a partial task. The text is data: no escaping, no interpretation.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite } from '../../util/atomic-write.js';
import { taskEnvNameProblem } from '../../tasks/task-list.js';
import { inRange } from '../index-range.js';
import type { IndexRange } from '../index-range.js';

export interface BridgeInput {
  objective: string;
  /** tasks[i] for agent i; undefined/absent entries fall back to the objective (engine side). */
  tasks?: readonly (string | undefined)[];
  /** Per-agent environment; written as task-env/<i>: NAME=VALUE entries, each ended by a NUL byte. */
  taskEnv?: readonly (Readonly<Record<string, string>> | undefined)[];
  /** The agents the run executes: only their tasks and environments are written (default: all). */
  range?: IndexRange;
}

export class BridgeInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BridgeInputError';
  }
}

const WRITE_CONCURRENCY = 32;

function assertNoNul(what: string, text: string): void {
  // The engine hands task text to agents via an environment variable, which cannot hold NUL.
  if (text.includes('\0')) throw new BridgeInputError(`${what} contains a NUL byte, which cannot be passed to an agent`);
}

/** Creates the root (0700) when missing and writes objective.txt and tasks/<i> (i in the range). */
export async function writeObjective(root: string, input: BridgeInput): Promise<void> {
  assertNoNul('objective', input.objective);
  const range = input.range;
  const ours = (i: number): boolean => range === undefined || inRange(range, i);
  const tasks = input.tasks ?? [];
  tasks.forEach((t, i) => {
    if (t !== undefined && ours(i)) assertNoNul(`task ${i}`, t);
  });
  await mkdir(root, { recursive: true, mode: 0o700 });
  await atomicWrite(join(root, 'objective.txt'), input.objective);
  const envs = input.taskEnv ?? [];
  if (envs.some((e) => e && Object.keys(e).length)) {
    const envDir = join(root, 'task-env');
    await mkdir(envDir, { recursive: true, mode: 0o700 });
    for (const [i, e] of envs.entries()) {
      if (!e || !Object.keys(e).length || !ours(i)) continue;
      for (const [name, value] of Object.entries(e)) {
        const problem = taskEnvNameProblem(name);
        if (problem) throw new BridgeInputError(`task ${i}: ${problem}`);
        assertNoNul(`task ${i} env ${name}`, value);
      }
      await atomicWrite(
        join(envDir, String(i)),
        Object.entries(e)
          .map(([n, v]) => `${n}=${v}\0`)
          .join(''),
      );
    }
  }
  if (tasks.length === 0) return;
  const taskDir = join(root, 'tasks');
  await mkdir(taskDir, { recursive: true, mode: 0o700 });
  let next = range ? Math.min(range.start, tasks.length) : 0;
  const last = range ? Math.min(range.end, tasks.length) : tasks.length;
  const worker = async (): Promise<void> => {
    while (next < last) {
      const i = next;
      next += 1;
      const text = tasks[i];
      if (text !== undefined) await atomicWrite(join(taskDir, String(i)), text);
    }
  };
  await Promise.all(Array.from({ length: Math.max(0, Math.min(WRITE_CONCURRENCY, last - next)) }, worker));
}
