import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swarmSpec } from '../../../operator/api/swarm.js';
import { coordinatorPod } from '../../../operator/swarm/coordinator-pod.js';
import { loadSwarmTasks, TASKS_MOUNT_PATH } from '../../../operator/swarm/swarm-tasks.js';
import type { Swarm } from '../../../operator/api/swarm.js';

const spec = (extra: Record<string, unknown>) => swarmSpec.parse({ objective: 'obj', agent: { command: ['cat'] }, ...extra });
const swarmOf = (s: ReturnType<typeof spec>): Swarm => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name: 'sw', namespace: 'ns', uid: 'u1' },
  spec: s,
});

describe('loadSwarmTasks', () => {
  it('no tasks: undefined (every agent gets the objective)', async () => {
    await expect(loadSwarmTasks(spec({ agents: 3 }))).resolves.toBeUndefined();
  });

  it('inline tasks, agents defaulting to their number', async () => {
    await expect(loadSwarmTasks(spec({ tasks: ['a', 'b $(id)'] }))).resolves.toEqual([{ task: 'a' }, { task: 'b $(id)' }]);
  });

  it('tasksFrom: reads the mounted key, with env; a missing key or a count mismatch names the ConfigMap and sizes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tasks-'));
    const s = spec({ agents: 2, tasksFrom: { configMapKeyRef: { name: 'files', key: 'list' } } });
    await expect(loadSwarmTasks(s, dir)).rejects.toThrow('ConfigMap files key list not found (the ConfigMap or its key is missing)');
    writeFileSync(join(dir, 'tasks'), '{"task":"a","env":[{"name":"FILE","value":"a.sh"}]}\n{"task":"b"}\n');
    await expect(loadSwarmTasks(s, dir)).resolves.toEqual([{ task: 'a', env: { FILE: 'a.sh' } }, { task: 'b' }]);
    writeFileSync(join(dir, 'tasks'), 'a\nb\nc\n');
    await expect(loadSwarmTasks(s, dir)).rejects.toThrow('ConfigMap files key list holds 3 tasks but agents is 2');
    writeFileSync(join(dir, 'tasks'), '{"task":"a","env":[{"name":"CFN_TASK","value":"x"}]}\n{"task":"b"}\n');
    await expect(loadSwarmTasks(s, dir)).rejects.toThrow(/ConfigMap files key list \(\d+ bytes\): line 1: env name CFN_TASK belongs to the engine/);
  });
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
