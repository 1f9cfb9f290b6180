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

describe('config/samples/swarm-lint-fixers.yaml', () => {
  it('gives each agent one real shell file of the engine (the image ships bash/ under /app)', () => {
    const sw = swarm.parse(parse(readFileSync(join(DIR, 'swarm-lint-fixers.yaml'), 'utf8')));
    const tasks = sw.spec.tasks ?? [];
    expect(tasks.length).toBeGreaterThan(5);
    expect(new Set(tasks).size).toBe(tasks.length);
    for (const t of tasks) {
      expect(t).toMatch(/^bash\/[a-z/-]+\.sh$/);
      expect(existsSync(join(process.cwd(), t))).toBe(true);
    }
  });
});

describe('config/samples/llm', () => {
  const llm = join(DIR, 'llm');
  it.each(readdirSync(llm).filter((f) => f.endsWith('.yaml')))(
    '%s parses with the Swarm schema, its agents in their own image with the API key from a Secret',
    (file) => {
      const sw = swarm.parse(parse(readFileSync(join(llm, file), 'utf8')));
      expect(sw.spec.agent.image).toMatch(/^registry\.example\.com\/agents\//);
      expect(sw.spec.agent.env?.find((e) => e.name === 'ANTHROPIC_API_KEY')?.valueFrom?.secretKeyRef).toEqual({ name: 'anthropic', key: 'api-key' });
      expect(sw.spec.tasks?.length).toBeGreaterThan(0);
    },
  );
});

describe('config/samples/swarm-results-retain.yaml', () => {
  it('keeps its claim, and each task names a real file of the engine (the image ships them under /app)', () => {
    const sw = swarm.parse(parse(readFileSync(join(DIR, 'swarm-results-retain.yaml'), 'utf8')));
    expect(sw.spec.results).toMatchObject({ type: 'persistentVolumeClaim', retain: true });
    for (const t of sw.spec.tasks ?? []) expect(existsSync(join(process.cwd(), t))).toBe(true);
  });
});
