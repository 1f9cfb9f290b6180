import { describe, expect, it } from '@jest/globals';
import { swarmSpec } from '../../../operator/api/swarm.js';
import { coordinatorPod } from '../../../operator/swarm/coordinator-pod.js';
import { TASKS_MOUNT_PATH } from '../../../operator/swarm/swarm-tasks.js';
import type { Swarm } from '../../../operator/api/swarm.js';

const spec = (extra: Record<string, unknown>) => swarmSpec.parse({ objective: 'obj', agent: { command: ['cat'] }, ...extra });
const swarmOf = (s: ReturnType<typeof spec>): Swarm => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name: 'sw', namespace: 'ns', uid: 'u1' },
  spec: s,
});

describe('coordinatorPod with tasksFrom', () => {
  it('mounts the key read-only as a file, optional (the coordinator reports a missing one), and puts no task in env', () => {
    const s = spec({ agents: 2, tasksFrom: { configMapKeyRef: { name: 'files', key: 'list' } } });
    const pod = coordinatorPod(swarmOf(s), 'v2', { image: 'img', attempt: 1 });
    expect(pod.spec.volumes).toContainEqual({ name: 'tasks', configMap: { name: 'files', optional: true, items: [{ key: 'list', path: 'tasks' }] } });
    expect(pod.spec.containers[0]?.volumeMounts).toContainEqual({ name: 'tasks', mountPath: TASKS_MOUNT_PATH, readOnly: true });
    const inline = coordinatorPod(swarmOf(spec({ tasks: ['secret task'] })), 'v1', { image: 'img', attempt: 1 });
    expect(JSON.stringify(inline.spec.containers[0]?.env)).not.toContain('secret task');
    expect(inline.spec.volumes.map((v) => (v as { name: string }).name)).not.toContain('tasks');
  });
});
