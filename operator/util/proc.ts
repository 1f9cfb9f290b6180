// Linux processes: signal a process or a whole process group (the one way to
// kill either), find a swarm's processes in /proc (cleanup safety net and
// tests) and measure a process tree's resident memory (benchmark).
import { readdir, readFile } from 'node:fs/promises';

export interface ProcInfo {
  pid: number;
  /** R, S, D, Z (exited, not reaped), ... */
  state: string;
  ppid: number;
  pgid: number;
  rssKb: number;
  comm: string;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined; // the process exited meanwhile, or is not ours to read
  }
}

async function listPids(): Promise<number[]> {
  const names = await readdir('/proc');
  return names.filter((n) => /^\d+$/.test(n)).map(Number);
}

/** Parses /proc/<pid>/stat (comm may contain spaces and parentheses). */
export async function readProc(pid: number): Promise<ProcInfo | undefined> {
  const stat = await readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const fields = stat.slice(close + 2).split(' ');
  // fields[0] = state, [1] = ppid, [2] = pgrp, ... [21] = rss in pages
  const pageKb = 4;
  return {
    pid,
    state: fields[0] ?? '',
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    rssKb: Number(fields[21]) * pageKb,
    comm,
  };
}

export async function listProcesses(): Promise<ProcInfo[]> {
  const infos = await Promise.all((await listPids()).map((pid) => readProc(pid)));
  return infos.filter((p): p is ProcInfo => p !== undefined);
}

/**
 * Whether a process group still has a member that runs. Zombies do not count:
 * a member whose parent died is reparented to PID 1, which in a container or
 * sandbox may never reap it.
 */
export async function groupRuns(pgid: number): Promise<boolean> {
  if (!signalGroup(pgid, 0)) return false;
  return (await listProcesses()).some((p) => p.pgid === pgid && p.state !== 'Z');
}

/** Sends `signal` (0: only probe) to one process; false when it is gone (or not ours to signal). */
export function signalProcess(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Sends `signal` (0: only probe) to every member of process group `pgid`; false when the group is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  if (!Number.isInteger(pgid) || pgid <= 0) return false; // -0 or -1 would signal this group or every process
  return signalProcess(-pgid, signal);
}

/**
 * SIGKILL to a process group, then waits (at most `timeoutMs`) until no member
 * runs: the leader's exit says nothing of the members it started, which die on
 * their own schedule on a loaded machine. True when none runs any more.
 */
export async function killGroupAndWait(pgid: number, timeoutMs = 2000): Promise<boolean> {
  signalGroup(pgid, 'SIGKILL');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await groupRuns(pgid))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** pid and every descendant, from one /proc snapshot. */
export function descendants(all: readonly ProcInfo[], rootPid: number): ProcInfo[] {
  const children = new Map<number, ProcInfo[]>();
  for (const p of all) {
    const list = children.get(p.ppid) ?? [];
    list.push(p);
    children.set(p.ppid, list);
  }
  const out: ProcInfo[] = [];
  const root = all.find((p) => p.pid === rootPid);
  if (root) out.push(root);
  const stack = [rootPid];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      stack.push(c.pid);
    }
  }
  return out;
}

/** Sum of RSS (kB) of a process and all its descendants right now. */
export async function treeRssKb(rootPid: number): Promise<number> {
  return descendants(await listProcesses(), rootPid).reduce((sum, p) => sum + p.rssKb, 0);
}

/** The value of NAME in a process's initial environment; undefined when it has none (or is gone). */
export async function processEnvValue(pid: number, name: string): Promise<string | undefined> {
  const env = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '');
  const needle = `${name}=`;
  for (const entry of env.split('\0')) if (entry.startsWith(needle)) return entry.slice(needle.length);
  return undefined;
}

/**
 * Processes carrying `NAME=value` in their initial environment (the engine gives
 * every agent SWARM_ID=<id>), excluding this process.
 */
export async function processesWithEnv(name: string, value: string): Promise<number[]> {
  const needle = Buffer.from(`${name}=${value}\0`);
  const found: number[] = [];
  await Promise.all(
    (await listPids()).map(async (pid) => {
      if (pid === process.pid) return;
      let env: Buffer;
      try {
        env = await readFile(`/proc/${pid}/environ`);
      } catch {
        return;
      }
      // environ starts with the first variable; match at start or after a NUL.
      const idx = env.indexOf(needle);
      if (idx === 0 || (idx > 0 && env[idx - 1] === 0)) found.push(pid);
    }),
  );
  return found.sort((a, b) => a - b);
}

/** Processes with `path` (or a path below it) among their command-line arguments, excluding this process. */
export async function processesWithArgUnder(path: string): Promise<number[]> {
  const found: number[] = [];
  await Promise.all(
    (await listPids()).map(async (pid) => {
      if (pid === process.pid) return;
      let cmdline: string;
      try {
        cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return;
      }
      if (cmdline.split('\0').some((arg) => arg === path || arg.startsWith(`${path}/`))) found.push(pid);
    }),
  );
  return found.sort((a, b) => a - b);
}
