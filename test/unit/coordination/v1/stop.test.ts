import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwarmCoordinator } from '../../../../operator/coordination/v1/swarm-coordinator.js';

function liveChildren(): string[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/\bps -o/.test(l));
}

/** Resource kinds that would keep the process alive or leak (timers, processes, pipes, files). */
function resources(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((r) => r !== 'TTYWrap')
    .sort();
}

const count = (list: string[], kind: string): number => list.filter((r) => r === kind).length;

describe('SwarmCoordinator.stop()', () => {
  it('leaves no child process, timer or handle behind when stopped mid-run (with retries pending)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfn-v1-stop-'));
    try {
      const before = resources();
      const c = new SwarmCoordinator({ memoryPath: join(dir, 'm.sqlite'), killGraceMs: 200, backoffBaseMs: 60_000 });
      await c.start();
      const run = c.executeObjective({
        id: 'long',
        description: 'hang',
        // Half hang (TERM ignored, so KILL is needed); half fail at once and wait a minute to retry.
        agents: 20,
        agentCommand: ['sh', '-c', 'if [ $((AGENT_INDEX % 2)) = 0 ]; then trap "" TERM; sleep 60; else exit 1; fi'],
        agentTimeoutSeconds: 120,
        retries: 3,
        concurrency: 20,
        timeoutSeconds: 600,
        maxOutputBytes: 1024,
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(liveChildren().length).toBeGreaterThan(0);
      await c.stop();
      const result = await run;
      expect(result.status.status).toBe('stopped');
      expect(liveChildren()).toEqual([]);
      // Nothing of ours is left: no process handle, and no more timers or
      // pipes than before the coordinator existed (jest's own may come and go).
      const after = resources();
      expect(after.filter((r) => r === 'ProcessWrap')).toEqual([]);
      for (const kind of ['Timeout', 'PipeWrap', 'FSReqCallback', 'Immediate']) {
        expect(count(after, kind)).toBeLessThanOrEqual(count(before, kind));
      }
      // Idempotent.
      await c.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);

  it('stop() mid-run reports the agents it cut short: running, no response; delivered ones are not among them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfn-v1-interrupted-'));
    try {
      const c = new SwarmCoordinator({ memoryPath: join(dir, 'm.sqlite'), killGraceMs: 200 });
      await c.start();
      const delivered: number[] = [];
      c.on('agent:completed', (e: { response: { index: number } }) => delivered.push(e.response.index));
      const run = c.executeObjective({
        id: 'cut',
        description: 'x',
        agents: 8,
        // Agents 0 and 1 answer at once; the others hang.
        agentCommand: ['sh', '-c', 'if [ "$AGENT_INDEX" -lt 2 ]; then echo ok; else sleep 60; fi'],
        agentTimeoutSeconds: 120,
        retries: 0,
        concurrency: 4,
        timeoutSeconds: 600,
        maxOutputBytes: 1024,
      });
      for (let i = 0; i < 200 && delivered.length < 2; i++) await new Promise((r) => setTimeout(r, 25));
      for (let i = 0; i < 200 && (await c.listAgents('cut'))!.filter((a) => a.state === 'running').length < 4; i++) await new Promise((r) => setTimeout(r, 25));
      await c.stop();
      const result = await run;
      expect(result.status.status).toBe('stopped');
      expect(result.responses.map((r) => r.index)).toEqual([0, 1]);
      expect(result.interruptedIndexes).toEqual([2, 3, 4, 5]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);

  it('stop() without start() is harmless', async () => {
    const c = new SwarmCoordinator({ memoryPath: join(tmpdir(), 'never-opened', 'm.sqlite') });
    await expect(c.stop()).resolves.toBeUndefined();
  });
});
