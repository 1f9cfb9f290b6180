// Where a coordinator pod finds a Swarm's per-agent tasks: spec.tasksFrom's
// ConfigMap key, mounted by the kubelet as a file (the coordinator's identity
// gets no ConfigMap permission, and no task goes through the pod's
// environment). The coordinator reads them with coordinator/load-tasks.ts.
import type { SwarmSpec } from '../api/swarm.js';

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
