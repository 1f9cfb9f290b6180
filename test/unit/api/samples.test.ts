import { describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { swarm } from '../../../operator/api/swarm.js';
import { parseTaskList } from '../../../operator/tasks/task-list.js';

const DIR = join(process.cwd(), 'config/samples');

describe('config/samples', () => {
  const files = readdirSync(DIR).filter((f) => f.startsWith('swarm-') && f.endsWith('.yaml'));

  it('has samples', () => expect(files.length).toBeGreaterThanOrEqual(3));

  it.each(files)('%s parses with the Swarm schema', (file) => {
    const doc = parse(readFileSync(join(DIR, file), 'utf8')) as object;
    const r = swarm.safeParse(doc);
    expect(r.error?.issues ?? []).toEqual([]);
  });
});

describe('config/samples/swarm-tasks.yaml', () => {
  it('its ConfigMap holds one valid task per agent, each naming a real file of the repository', () => {
    const cm = parse(readFileSync(join(DIR, 'tasks-bash-files.yaml'), 'utf8')) as { data: Record<string, string> };
    const sw = swarm.parse(parse(readFileSync(join(DIR, 'swarm-tasks.yaml'), 'utf8')));
    const ref = sw.spec.tasksFrom!.configMapKeyRef;
    const tasks = parseTaskList(cm.data[ref.key]!, sw.spec.tasksFrom!.format);
    expect(tasks).toHaveLength(sw.spec.agents!);
    for (const t of tasks) expect(existsSync(join(process.cwd(), t.env!.FILE!))).toBe(true);
  });
});
