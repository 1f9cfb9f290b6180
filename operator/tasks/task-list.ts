// Per-agent tasks: the formats a task list comes in (spec.tasksFrom's
// ConfigMap key, `cfn run --tasks FILE`) and their validation. Task text is
// data: it is never evaluated, only handed to agent i as task i.
import { z } from 'zod';
import { TASKS_INLINE_MAX_CHARS } from '../api/swarm.js';

export { TASKS_INLINE_MAX_CHARS };
/** Bound on one task's text. */
export const TASK_MAX_BYTES = 64 * 1024;
/** Bound on the per-task environment variables of one task. */
export const TASK_ENV_MAX_VARS = 64;
/** Names an agent's environment gets from the engine (docs/agent-contract.md): a task may not set them. */
export const ENGINE_ENV_NAMES = ['AGENT_ID', 'AGENT_INDEX', 'OBJECTIVE_ID', 'SWARM_ID'] as const;
/** Every name starting with this prefix belongs to the engine (CFN_TASK, CFN_OBJECTIVE, CFN_ATTEMPT, ...). */
export const ENGINE_ENV_PREFIX = 'CFN_';
export const TASK_ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type TaskFormat = 'lines' | 'jsonl' | 'auto';

export interface Task {
  task: string;
  /** Environment for this agent only (never an engine name). */
  env?: Readonly<Record<string, string>>;
}

export class TaskListError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskListError';
  }
}

/** Why NAME cannot be a per-task variable, or null when it can. */
export function taskEnvNameProblem(name: string): string | null {
  if (!TASK_ENV_NAME.test(name)) return `env name ${JSON.stringify(name)} is not a valid variable name (${TASK_ENV_NAME.source})`;
  if (name.startsWith(ENGINE_ENV_PREFIX) || (ENGINE_ENV_NAMES as readonly string[]).includes(name)) {
    return `env name ${name} belongs to the engine (${ENGINE_ENV_NAMES.join(', ')} and ${ENGINE_ENV_PREFIX}*)`;
  }
  return null;
}

const jsonTask = z
  .object({
    task: z.string(),
    env: z
      .array(z.object({ name: z.string(), value: z.string() }).strict())
      .max(TASK_ENV_MAX_VARS)
      .optional(),
  })
  .strict();

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

function checkTask(t: Task, where: string, maxBytes = TASK_MAX_BYTES): Task {
  if (t.task.includes('\0')) throw new TaskListError(`${where}: the task contains a NUL byte (tasks reach agents in CFN_TASK, which cannot hold one)`);
  const size = bytes(t.task);
  if (size > maxBytes) throw new TaskListError(`${where}: the task is ${size} bytes, above the bound of ${maxBytes} bytes per task`);
  for (const [name, value] of Object.entries(t.env ?? {})) {
    const problem = taskEnvNameProblem(name);
    if (problem) throw new TaskListError(`${where}: ${problem}`);
    if (value.includes('\0')) throw new TaskListError(`${where}: env ${name} contains a NUL byte`);
  }
  return t;
}

/** The format of TEXT when not given: JSON lines when its first non-blank line starts with `{`, else plain lines. */
export function detectTaskFormat(text: string): 'lines' | 'jsonl' {
  const first = text.split('\n').find((l) => l.trim() !== '');
  return first !== undefined && first.trimStart().startsWith('{') ? 'jsonl' : 'lines';
}

/**
 * Parses a task list: one task per line (`lines`: the line's text, without its
 * newline and a trailing CR), or one JSON object per line (`jsonl`:
 * {"task": "...", "env": [{"name": "N", "value": "V"}]}, so a task may hold
 * newlines). Blank lines are not tasks. Throws TaskListError naming the line.
 */
export function parseTaskList(text: string, format: TaskFormat = 'auto'): Task[] {
  const fmt = format === 'auto' ? detectTaskFormat(text) : format;
  const tasks: Task[] = [];
  text.split('\n').forEach((raw, n) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const where = `line ${n + 1}`;
    if (fmt === 'lines') {
      tasks.push(checkTask({ task: line }, where));
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      const hint = format === 'auto' ? ' (read as JSON lines because the first task starts with "{": set the format to lines for plain text)' : '';
      throw new TaskListError(`${where}: not a JSON object (${(err as Error).message}); JSON lines need one {"task": ...} object per line${hint}`);
    }
    const parsed = jsonTask.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TaskListError(
        `${where}: ${issue?.path.join('.') || 'object'}: ${issue?.message ?? 'invalid'} (expected {"task": "...", "env": [{"name": ..., "value": ...}]})`,
      );
    }
    const env = parsed.data.env?.length ? Object.fromEntries(parsed.data.env.map((e) => [e.name, e.value])) : undefined;
    tasks.push(checkTask({ task: parsed.data.task, ...(env ? { env } : {}) }, where));
  });
  return tasks;
}

/** Checks an inline list (spec.tasks) as the CRD does (characters, as CEL's size()), for callers that did not pass the API server. */
export function checkInlineTasks(tasks: readonly string[]): Task[] {
  const total = tasks.reduce((n, t) => n + [...t].length, 0);
  if (total > TASKS_INLINE_MAX_CHARS) {
    throw new TaskListError(`spec.tasks holds ${total} characters, above the bound of ${TASKS_INLINE_MAX_CHARS} for an inline list (use spec.tasksFrom)`);
  }
  // The CRD bounds each inline task in characters (TASK_MAX_CHARS), not bytes.
  return tasks.map((t, i) => checkTask({ task: t }, `spec.tasks[${i}]`, Number.POSITIVE_INFINITY));
}

/** Checks that a task list fits AGENTS agents (one task per agent). */
export function checkTaskCount(tasks: readonly Task[], agents: number, what: string): void {
  if (tasks.length === 0) throw new TaskListError(`${what} holds no task`);
  if (tasks.length !== agents) throw new TaskListError(`${what} holds ${tasks.length} tasks but agents is ${agents}: give one task per agent`);
}

/** The per-agent environments of TASKS for an ObjectiveSpec ({} for a task without env; undefined when no task has env). */
export function taskEnvOf(tasks: readonly Task[]): Readonly<Record<string, string>>[] | undefined {
  return tasks.some((t) => t.env) ? tasks.map((t) => t.env ?? {}) : undefined;
}
