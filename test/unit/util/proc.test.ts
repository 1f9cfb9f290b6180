import { describe, expect, it, jest } from '@jest/globals';

jest.setTimeout(30_000);
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { descendants, listProcesses, processesWithArgUnder, processesWithEnv, readProc, treeRssKb } from '../../../operator/util/proc.js';
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
});
