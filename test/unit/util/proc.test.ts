import { describe, expect, it, jest } from '@jest/globals';

jest.setTimeout(30_000);
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { descendants, groupRuns, listProcesses, processesWithArgUnder, processesWithEnv, readProc, treeRssKb } from '../../../operator/util/proc.js';
import { findPackageRoot } from '../../../operator/util/package-root.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

describe('proc', () => {
  it('finds processes by environment variable and by path argument, and measures a tree', async () => {
    const tag = `t-${process.pid}-${Date.now()}`;
    // sh -> sleep: a two-level tree carrying the tag in its environment
    // $0 of the shell is a path below /dev/shm/<tag>
    const child = spawn('sh', ['-c', 'sleep 30 & wait', `/dev/shm/${tag}/x`], { env: { ...process.env, CFN_TEST_TAG: tag }, stdio: 'ignore' });
    try {
      let found: number[] = [];
      for (let i = 0; i < 100 && found.length < 2; i += 1) {
        found = await processesWithEnv('CFN_TEST_TAG', tag);
        if (found.length < 2) await new Promise((r) => setTimeout(r, 20));
      }
      expect(found).toContain(child.pid);
      expect(found.length).toBe(2);
      expect(await processesWithEnv('CFN_TEST_TAG', `${tag}-other`)).toEqual([]);
      const byArg = await processesWithArgUnder(`/dev/shm/${tag}`);
      expect(byArg.length).toBe(1);
      expect(await processesWithArgUnder(`/dev/shm/${tag}x`)).toEqual([]);

      const tree = descendants(await listProcesses(), child.pid as number);
      expect(tree.map((p) => p.pid).sort()).toEqual(found);
      expect(tree.find((p) => p.pid !== child.pid)?.comm).toBe('sleep');
      expect(await treeRssKb(child.pid as number)).toBeGreaterThan(0);
      const me = await readProc(process.pid);
      expect(me?.ppid).toBe(process.ppid);
    } finally {
      child.kill('SIGTERM');
      for (const pid of await processesWithEnv('CFN_TEST_TAG', tag)) process.kill(pid, 'SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    }
    expect(await readProc(999_999_999)).toBeUndefined();
  });

  it('finds the package root from a module URL', () => {
    const root = findPackageRoot(import.meta.url);
    expect(existsSync(join(root, 'bash'))).toBe(true);
    expect(() => findPackageRoot('file:///', 'no-such-package')).toThrow(/cannot find the no-such-package package root/);
  });

  it('groupRuns: true while a member of the group runs, even after its leader exited; false once the members are dead', async () => {
    // The leader exits at once; its sleep lives on in the group, reparented.
    const leader = spawn('sh', ['-c', 'sleep 30 & echo $!'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    leader.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    await once(leader, 'exit');
    const pgid = leader.pid as number;
    const sleeper = Number(out.trim());
    expect((await readProc(sleeper))?.pgid).toBe(pgid);
    expect(await groupRuns(pgid)).toBe(true);
    process.kill(-pgid, 'SIGKILL');
    let runs = true;
    for (let i = 0; i < 200 && runs; i += 1) {
      runs = await groupRuns(pgid);
      if (runs) await new Promise((r) => setTimeout(r, 10));
    }
    expect(runs).toBe(false);
    const state = (await readProc(sleeper))?.state;
    expect(state === undefined || state === 'Z').toBe(true);
  });
});
