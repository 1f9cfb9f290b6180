// A Swarm's per-agent tasks, as its coordinator pod reads them: spec.tasks from
// the Swarm it already reads, spec.tasksFrom from the ConfigMap key the kubelet
// mounts as a file (the coordinator's identity gets no ConfigMap permission,
// and no task goes through the pod's environment). Checked against the agent
// count: a mismatch is an error naming both numbers, never a truncation.
import { readFile } from 'node:fs/promises';
import { swarmAgents } from '../api/swarm.js';
import type { SwarmSpec } from '../api/swarm.js';
import { checkInlineTasks, checkTaskCount, parseTaskList, TaskListError } from '../tasks/task-list.js';
import type { Task } from '../tasks/task-list.js';

/** Where the coordinator pod mounts spec.tasksFrom's key (a configMap volume, read-only). */
export const TASKS_MOUNT_PATH = '/etc/cfn/tasks';
export const TASKS_FILE_NAME = 'tasks';
export const TASKS_VOLUME = 'tasks';
/** How the coordinator's result message starts when the tasks are invalid (the operator's reason InvalidTasks). */
export const INVALID_TASKS_PREFIX = 'invalid tasks: ';

/** The ConfigMap volume holding spec.tasksFrom's key as TASKS_FILE_NAME (optional: a missing key is reported by the coordinator). */
export function tasksVolume(spec: SwarmSpec): object | undefined {
  const ref = spec.tasksFrom?.configMapKeyRef;
  if (!ref) return undefined;
  return { name: TASKS_VOLUME, configMap: { name: ref.name, optional: true, items: [{ key: ref.key, path: TASKS_FILE_NAME }] } };
}

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
