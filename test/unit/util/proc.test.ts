import { describe, expect, it, jest } from '@jest/globals';

jest.setTimeout(30_000);
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  descendants,
  environmentsWith,
  groupRuns,
  killGroupAndWait,
  listProcesses,
  processesWithArgUnder,
  processEnvironment,
  processesWithEnv,
  readProc,
  signalGroup,
  signalProcess,
  treeRssKb,
} from '../../../operator/util/proc.js';
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

  it('finds a process while it execs, when its environ and cmdline read empty until the new image has set them up', async () => {
    const tag = `x-${process.pid}-${Date.now()}`;
    const dir = `/dev/shm/${tag}`;
    // 17 execs in a row (sh, env x 16, sh), each leaving a window in which
    // /proc/<pid>/environ and cmdline read empty; every image carries the tag
    // in its environment and a path under DIR among its arguments.
    const envs = Array.from({ length: 16 }, (_, i) => `env E${i}=1`).join(' ');
    const execChain = ['-c', `exec ${envs} sh -c 'sleep 30; :' ${dir}/inner`, `${dir}/outer`];
    let scans = 0;
    const missed: string[] = [];
    for (let n = 0; n < 40; n += 1) {
      const child = spawn('sh', execChain, { env: { ...process.env, CFN_TEST_TAG: tag }, stdio: 'ignore' });
      try {
        // spawn returned after sh's exec: from now until the kill the process carries both.
        for (let k = 0; k < 3; k += 1) {
          scans += 1;
          const byArg = await processesWithArgUnder(dir);
          const byEnv = await environmentsWith('CFN_TEST_TAG', tag);
          const mine = byEnv.find((p) => p.pid === child.pid);
          if (!mine) missed.push(`environ, scan ${scans}`);
          else expect(mine.env.get('CFN_TEST_TAG')).toBe(tag);
          if (!byArg.includes(child.pid as number)) missed.push(`cmdline, scan ${scans}`);
        }
      } finally {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
    expect(missed).toEqual([]);
  });

  it('processEnvironment: undefined for a kernel thread, a zombie or a process that is gone', async () => {
    expect(await processEnvironment(2)).toBeUndefined(); // kthreadd
    expect(await processEnvironment(999_999_999)).toBeUndefined();
    // A zombie: sh's child, left unreaped once sh has become `sleep 30`.
    const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const [line] = (await once(parent.stdout, 'data')) as [Buffer];
      const zombie = Number(line.toString().trim());
      for (let i = 0; i < 200 && (await readProc(zombie))?.state !== 'Z'; i += 1) await new Promise((r) => setTimeout(r, 10));
      expect((await readProc(zombie))?.state).toBe('Z');
      expect(await processEnvironment(zombie)).toBeUndefined();
    } finally {
      parent.kill('SIGKILL');
      await once(parent, 'exit');
    }
    const me = await processEnvironment(process.pid);
    expect(me?.get('PATH')).toBe(process.env.PATH);
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
    expect(signalGroup(pgid, 'SIGKILL')).toBe(true);
    let runs = true;
    for (let i = 0; i < 200 && runs; i += 1) {
      runs = await groupRuns(pgid);
      if (runs) await new Promise((r) => setTimeout(r, 10));
    }
    expect(runs).toBe(false);
    const state = (await readProc(sleeper))?.state;
    expect(state === undefined || state === 'Z').toBe(true);
  });

  /** A detached `sh` (its own group leader) that starts `members` sleeps ignoring TERM, prints their pids and waits. */
  async function group(members: number, ignoreTerm: boolean): Promise<{ pgid: number; members: number[]; leader: ReturnType<typeof spawn> }> {
    const trap = ignoreTerm ? "trap '' TERM; " : '';
    const script = `${trap}for i in $(seq ${members}); do sleep 30 & echo $!; done; wait`;
    const leader = spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    leader.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    for (let i = 0; i < 200 && out.trim().split('\n').filter(Boolean).length < members; i += 1) await new Promise((r) => setTimeout(r, 10));
    const pids = out.trim().split('\n').filter(Boolean).map(Number);
    expect(pids).toHaveLength(members);
    return { pgid: leader.pid as number, members: pids, leader };
  }

  const alive = async (pid: number) => {
    const state = (await readProc(pid))?.state;
    return state !== undefined && state !== 'Z';
  };

  it("signalGroup: reaches every member of the group; false for no group, never the caller's group nor every process", async () => {
    const g = await group(2, false);
    const exited = once(g.leader, 'exit');
    expect(signalGroup(g.pgid, 0)).toBe(true);
    expect(signalGroup(g.pgid, 'SIGTERM')).toBe(true);
    await exited;
    for (let i = 0; i < 200 && (await groupRuns(g.pgid)); i += 1) await new Promise((r) => setTimeout(r, 10));
    for (const pid of g.members) expect(await alive(pid)).toBe(false);
    expect(await groupRuns(g.pgid)).toBe(false);
    expect(signalGroup(999_999_999, 'SIGKILL')).toBe(false);
    // Never the caller's own group (-0) nor every process (-1).
    expect(signalGroup(0, 0)).toBe(false);
    expect(signalGroup(-1, 0)).toBe(false);
  });

  it('signalProcess: one process, not the rest of its group', async () => {
    const g = await group(2, false);
    try {
      const [victim, other] = g.members as [number, number];
      expect(signalProcess(victim, 'SIGKILL')).toBe(true);
      for (let i = 0; i < 200 && (await alive(victim)); i += 1) await new Promise((r) => setTimeout(r, 10));
      expect(await alive(victim)).toBe(false);
      expect(await alive(other)).toBe(true);
      expect(signalProcess(999_999_999, 0)).toBe(false);
    } finally {
      await killGroupAndWait(g.pgid);
    }
  });

  it('killGroupAndWait: members that ignore SIGTERM are dead when it returns', async () => {
    const g = await group(3, true);
    expect(signalGroup(g.pgid, 'SIGTERM')).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    for (const pid of g.members) expect(await alive(pid)).toBe(true);
    expect(await killGroupAndWait(g.pgid)).toBe(true);
    expect(await groupRuns(g.pgid)).toBe(false);
    for (const pid of g.members) expect(await alive(pid)).toBe(false);
    // A group already gone: nothing to wait for.
    expect(await killGroupAndWait(g.pgid)).toBe(true);
  });
});
