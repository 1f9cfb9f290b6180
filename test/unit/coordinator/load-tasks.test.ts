import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swarmSpec } from '../../../operator/api/swarm.js';
import { loadSwarmTasks } from '../../../operator/coordinator/load-tasks.js';

const spec = (extra: Record<string, unknown>) => swarmSpec.parse({ objective: 'obj', agent: { command: ['cat'] }, ...extra });

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
