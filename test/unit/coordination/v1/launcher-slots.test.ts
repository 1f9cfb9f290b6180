// V1 over isolated slots (spec.agent.isolation container): the session, given
// CFN_LAUNCHER_DIR and CFN_LAUNCHER_SLOTS as the coordinator pod sets them,
// gives each slot's launcher (serve --slot) one attempt at a time; every
// attempt is answered once, and an attempt stopped before a slot took it is
// answered as stopped.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentLauncher, launcherPath } from '../../../../operator/coordination/v1/agent-process.js';

const SLOTS = 2;

describe('a V1 launcher session over isolated slots', () => {
  let dir: string;
  let serves: ChildProcess[];
  const saved = { dir: process.env.CFN_LAUNCHER_DIR, slots: process.env.CFN_LAUNCHER_SLOTS };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfn-v1-slots-'));
    serves = [];
    for (let k = 0; k < SLOTS; k++) {
      const [tmp, work] = [join(dir, `tmp.${k}`), join(dir, `work.${k}`)];
      mkdirSync(tmp);
      mkdirSync(work);
      mkdirSync(join(dir, 'slots'), { recursive: true });
      serves.push(
        spawn(launcherPath(), ['serve', '--slot', '--wipe', tmp, '--wipe', work, join(dir, 'slots', String(k))], {
          cwd: work,
          env: { ...process.env, TMPDIR: tmp },
          stdio: 'ignore',
        }),
      );
    }
    process.env.CFN_LAUNCHER_DIR = join(dir, 'slots');
    process.env.CFN_LAUNCHER_SLOTS = String(SLOTS);
  });

  afterEach(async () => {
    for (const [k, v] of [
      ['CFN_LAUNCHER_DIR', saved.dir],
      ['CFN_LAUNCHER_SLOTS', saved.slots],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await Promise.all(serves.map((s) => new Promise((resolve) => (s.exitCode !== null ? resolve(null) : (s.once('exit', resolve), s.kill('SIGTERM'))))));
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (argv: string[]) => new AgentLauncher({ argv, objectiveId: 'slots-1', objective: 'obj', agentsTotal: 8, maxOutputBytes: 4096 });

  it('answers every attempt once, each slot running one at a time in a fresh /tmp', async () => {
    // Fails when its slot is busy or its /tmp holds anything of an agent before it.
    const script = `[ -z "$(ls -A "$TMPDIR")" ] || exit 3; mkdir "$0/busy.\${TMPDIR##*.}" || exit 4; : >"$TMPDIR/mine"; echo "$AGENT_INDEX" >>"$0/ran"; sleep 0.05; rmdir "$0/busy.\${TMPDIR##*.}"; echo "$TMPDIR"`;
    const launcher = run(['sh', '-c', script, dir]);
    try {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => launcher.attempt({ agentIndex: i, task: `t${i}`, attempt: 1, signal: new AbortController().signal })),
      );
      expect(results.map((r) => [r.ok, r.exitCode])).toEqual(Array.from({ length: 8 }, () => [true, 0]));
      expect(new Set(results.map((r) => r.output)).size).toBe(SLOTS);
      const ran = readFileSync(join(dir, 'ran'), 'utf8').trim().split('\n').map(Number);
      expect(ran.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    } finally {
      await launcher.close();
    }
  });

  it('an attempt stopped while it waits for a slot, or while it runs, is answered as stopped; the others complete', async () => {
    const launcher = run(['sh', '-c', '[ "$AGENT_INDEX" = 0 ] && exec sleep 30; echo ok']);
    try {
      const running = new AbortController();
      const waiting = new AbortController();
      const attempts = [
        launcher.attempt({ agentIndex: 0, task: 't', attempt: 1, signal: running.signal }),
        launcher.attempt({ agentIndex: 1, task: 't', attempt: 1, signal: new AbortController().signal }),
        launcher.attempt({ agentIndex: 2, task: 't', attempt: 1, signal: waiting.signal }),
      ];
      waiting.abort(new Error('stopped while waiting'));
      await new Promise((r) => setTimeout(r, 300));
      running.abort(new Error('stopped while running'));
      const [r0, r1, r2] = await Promise.all(attempts);
      expect(r0).toMatchObject({ aborted: true, error: 'stopped while running' });
      expect(r1).toMatchObject({ ok: true, output: 'ok\n' });
      expect(r2).toMatchObject({ aborted: true, error: 'stopped while waiting' });
      // The session goes on: a slot takes the next attempt.
      expect(await launcher.attempt({ agentIndex: 3, task: 't', attempt: 1, signal: new AbortController().signal })).toMatchObject({ ok: true });
    } finally {
      await launcher.close();
    }
  });
});
