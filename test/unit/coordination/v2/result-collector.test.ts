import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { linkSync, unlinkSync, writeFileSync } from 'node:fs';
import { link, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ResultCollector } from '../../../../operator/coordination/v2/result-collector.js';
import type { AgentResponse } from '../../../../operator/coordination/types.js';
import type { StatusFile } from '../../../../operator/coordination/v2/schemas.js';
import { atomicWrite } from '../../../../operator/util/atomic-write.js';

function response(index: number, status: 'completed' | 'failed' = 'completed'): AgentResponse {
  return {
    agentId: `agent-${index}`,
    index,
    status,
    exitCode: status === 'completed' ? 0 : 1,
    attempts: 1,
    durationMs: 3,
    output: `out ${index}`,
    outputBytes: 5,
    outputTruncated: false,
    error: null,
  };
}

/** Publishes like the engine: staging file + ln (never overwrite). */
async function publish(root: string, name: string, text: string): Promise<void> {
  const tmp = join(root, 'responses', '.tmp', `${name}.${Math.random()}`);
  await writeFile(tmp, text);
  await link(tmp, join(root, 'responses', name));
  await rm(tmp);
}

function waitFor(predicate: () => boolean, what: string, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = (): void => {
      if (predicate()) resolve();
      else if (Date.now() - started > ms) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

describe('ResultCollector', () => {
  let root: string;
  let collector: ResultCollector | undefined;
  beforeEach(async () => {
    root = await mkdtemp('/dev/shm/cfn-test-rc-');
  });
  afterEach(async () => {
    await collector?.close();
    collector = undefined;
    await rm(root, { recursive: true, force: true });
  });

  it('collects responses live, once each, including ones present before start and a late responses/ dir', async () => {
    collector = new ResultCollector(root);
    const seen: AgentResponse[] = [];
    collector.on('response', (r) => seen.push(r));
    await collector.start();
    await mkdir(join(root, 'responses', '.tmp'), { recursive: true });
    for (let i = 0; i < 50; i += 1) await publish(root, `agent-${i}.json`, JSON.stringify(response(i)));
    await waitFor(() => seen.length === 50, '50 responses');
    await collector.sweep();
    await collector.sweep();
    expect(seen.length).toBe(50);
    expect(collector.collected().map((r) => r.index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(collector.quarantined).toBe(0);
  });

  it('collects a burst of 500 responses in synchronous passes; sweep() resolves only after the quarantines it started', async () => {
    await mkdir(join(root, 'responses', '.tmp'), { recursive: true });
    collector = new ResultCollector(root);
    let emitted = 0;
    collector.on('response', () => (emitted += 1));
    await collector.start();
    // Written without yielding: the watcher's events arrive as one burst.
    for (let i = 0; i < 500; i += 1) {
      const tmp = join(root, 'responses', '.tmp', `agent-${i}`);
      writeFileSync(tmp, i === 7 || i === 300 ? '{"truncated' : JSON.stringify(response(i)));
      linkSync(tmp, join(root, 'responses', `agent-${i}.json`));
      unlinkSync(tmp);
    }
    await collector.sweep();
    expect(collector.quarantined).toBe(2);
    expect(collector.collected().length).toBe(498);
    expect(emitted).toBe(498);
    expect((await readdir(join(root, 'quarantine'))).length).toBe(2);
  });

  it('quarantines a malformed response file, counts it, and keeps going (no crash)', async () => {
    await mkdir(join(root, 'responses', '.tmp'), { recursive: true });
    await publish(root, 'agent-0.json', JSON.stringify(response(0)));
    await publish(root, 'agent-1.json', '{"agentId": "agent-1", trunc');
    collector = new ResultCollector(root);
    const reasons: string[] = [];
    const errors: Error[] = [];
    collector.on('quarantine', (q) => reasons.push(q.reason));
    collector.on('error', (e) => errors.push(e));
    await collector.start();
    await publish(root, 'agent-2.json', JSON.stringify({ ...response(2), status: 'bogus' }));
    await publish(root, 'agent-3.json', JSON.stringify(response(4))); // index does not match name
    await publish(root, 'notes.txt', 'hello');
    await publish(root, 'agent-5.json', JSON.stringify(response(5, 'failed')));
    await waitFor(() => collector!.quarantined === 4 && collector!.collected().length === 2, 'quarantine of 4');
    await collector.sweep();
    expect(collector.collected().map((r) => [r.index, r.status])).toEqual([
      [0, 'completed'],
      [5, 'failed'],
    ]);
    expect(collector.quarantined).toBe(4);
    expect(reasons.some((r) => r.startsWith('not JSON'))).toBe(true);
    expect(reasons.some((r) => r.startsWith('status:'))).toBe(true);
    expect(reasons).toContain('index 4 does not match file name');
    expect(reasons).toContain('file name is not agent-<index>.json');
    expect(errors).toEqual([]);
    const q = await readdir(join(root, 'quarantine'));
    expect(q.length).toBe(4);
    expect((await readdir(join(root, 'responses'))).sort()).toEqual(['.tmp', 'agent-0.json', 'agent-5.json']);
  });

  it('quarantines a well-formed response for an agent index beyond the total', async () => {
    await mkdir(join(root, 'responses', '.tmp'), { recursive: true });
    collector = new ResultCollector(root, { start: 0, end: 3 });
    const reasons: string[] = [];
    collector.on('quarantine', (q) => reasons.push(q.reason));
    await collector.start();
    await publish(root, 'agent-2.json', JSON.stringify(response(2)));
    await publish(root, 'agent-3.json', JSON.stringify(response(3)));
    await waitFor(() => collector!.quarantined === 1 && collector!.collected().length === 1, 'one quarantined, one collected');
    expect(reasons).toEqual(['index 3 is outside 0..2']);
  });

  it('quarantines a well-formed response for an agent before the start of its index range', async () => {
    await mkdir(join(root, 'responses', '.tmp'), { recursive: true });
    collector = new ResultCollector(root, { start: 2, end: 4 });
    const reasons: string[] = [];
    collector.on('quarantine', (q) => reasons.push(q.reason));
    await collector.start();
    await publish(root, 'agent-1.json', JSON.stringify(response(1)));
    await publish(root, 'agent-2.json', JSON.stringify(response(2)));
    await waitFor(() => collector!.quarantined === 1 && collector!.collected().length === 1, 'one quarantined, one collected');
    expect(reasons).toEqual(['index 1 is outside 2..3']);
    expect(collector.collected().map((r) => r.index)).toEqual([2]);
  });

  it('emits status updates, skips duplicates, and keeps a copy of a malformed status.json', async () => {
    collector = new ResultCollector(root);
    const statuses: StatusFile[] = [];
    collector.on('status', (s) => statuses.push(s));
    await collector.start();
    const base = {
      objectiveId: 's1',
      status: 'running' as const,
      agents: { total: 2, completed: 1, failed: 0 },
      deliveryRate: 50,
      coordinationTime: 10,
      throughputAgentsPerSec: 100,
    };
    await atomicWrite(join(root, 'status.json'), JSON.stringify(base));
    await waitFor(() => statuses.length === 1, 'first status');
    await atomicWrite(join(root, 'status.json'), '{broken');
    await waitFor(() => collector!.quarantined === 1, 'status quarantine');
    const done = { ...base, status: 'completed' as const, agents: { total: 2, completed: 2, failed: 0 }, deliveryRate: 100 };
    await atomicWrite(join(root, 'status.json'), JSON.stringify(done));
    await waitFor(() => statuses.length === 2, 'second status');
    await collector.sweep();
    expect(statuses.map((s) => s.status)).toEqual(['running', 'completed']);
    expect(collector.status?.status).toBe('completed');
    const q = await readdir(join(root, 'quarantine'));
    expect(q.length).toBe(1);
    expect(await readFile(join(root, 'quarantine', q[0] as string), 'utf8')).toBe('{broken');
  });

  it('does not crash when the root is removed under it', async () => {
    collector = new ResultCollector(root);
    const errors: Error[] = [];
    collector.on('error', (e) => errors.push(e));
    await mkdir(join(root, 'responses'), { recursive: true });
    await collector.start();
    await rm(root, { recursive: true, force: true });
    await collector.sweep();
    await new Promise((r) => setTimeout(r, 50));
    expect(errors).toEqual([]);
  });
});
