// A Swarm's per-agent tasks, as its coordinator pod reads them: spec.tasks from
// the Swarm it already reads, spec.tasksFrom from the ConfigMap key mounted as
// a file (swarm/swarm-tasks.ts). Checked against the agent count: a mismatch
// is an error naming both numbers, never a truncation.
import { readFile } from 'node:fs/promises';
import { swarmAgents } from '../api/swarm.js';
import type { SwarmSpec } from '../api/swarm.js';
import { checkInlineTasks, checkTaskCount, parseTaskList, TaskListError } from '../tasks/task-list.js';
import type { Task } from '../tasks/task-list.js';
import { TASKS_FILE_NAME, TASKS_MOUNT_PATH } from '../swarm/swarm-tasks.js';

/** The tasks of SPEC (undefined: none, every agent gets the objective). Throws TaskListError. */
export async function loadSwarmTasks(spec: SwarmSpec, tasksDir = TASKS_MOUNT_PATH): Promise<Task[] | undefined> {
  const agents = swarmAgents(spec);
  if (spec.tasks) {
    const tasks = checkInlineTasks(spec.tasks);
    checkTaskCount(tasks, agents, 'spec.tasks');
    return tasks;
  }
  const from = spec.tasksFrom;
  if (!from) return undefined;
  const what = `ConfigMap ${from.configMapKeyRef.name} key ${from.configMapKeyRef.key}`;
  let text: string;
  try {
    text = await readFile(`${tasksDir}/${TASKS_FILE_NAME}`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new TaskListError(`${what} not found (the ConfigMap or its key is missing)`);
    throw err;
  }
  let tasks: Task[];
  try {
    tasks = parseTaskList(text, from.format);
  } catch (err) {
    if (err instanceof TaskListError) throw new TaskListError(`${what} (${Buffer.byteLength(text)} bytes): ${err.message}`);
    throw err;
  }
  checkTaskCount(tasks, agents, what);
  return tasks;
}
