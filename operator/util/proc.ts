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
  /** The kernel's PF_* flags (kernel threads have PF_KTHREAD). */
  flags: number;
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
  // fields[0] = state, [1] = ppid, [2] = pgrp, [6] = flags, ... [21] = rss in pages
  const pageKb = 4;
  return {
    pid,
    state: fields[0] ?? '',
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    flags: Number(fields[6]),
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

const PF_KTHREAD = 0x00200000;

/** How long a process whose environ or cmdline reads empty is given to finish an exec. */
const EXEC_WAIT_MS = 200;

/**
 * /proc/<pid>/environ or cmdline; undefined when the process is gone, a zombie
 * or a kernel thread. While a process execs, both read empty until the new
 * image has set them up (measured: about 2% of the reads of a process that
 * execs four times in a row), so an empty read of a live process is read
 * again until it holds something or EXEC_WAIT_MS have passed.
 */
async function readImageText(pid: number, file: 'environ' | 'cmdline'): Promise<string | undefined> {
  const deadline = Date.now() + EXEC_WAIT_MS;
  for (;;) {
    let raw: string;
    try {
      raw = await readFile(`/proc/${pid}/${file}`, 'utf8');
    } catch {
      return undefined; // gone, or not ours to read
    }
    if (raw.length > 0) return raw;
    const info = await readProc(pid);
    if (!info || info.state === 'Z' || info.flags & PF_KTHREAD) return undefined;
    if (Date.now() >= deadline) return raw; // it really is empty
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A process's initial environment, NAME -> value; undefined when it is gone, a zombie or a kernel thread. */
export async function processEnvironment(pid: number): Promise<Map<string, string> | undefined> {
  const raw = await readImageText(pid, 'environ');
  return raw === undefined ? undefined : parseEnviron(raw);
}

function parseEnviron(raw: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=');
    // The first definition wins, as getenv(3) finds it.
    if (eq > 0 && !env.has(entry.slice(0, eq))) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

/** A process and its initial environment. */
export interface ProcEnv {
  pid: number;
  env: ReadonlyMap<string, string>;
}

/**
 * Processes carrying `NAME=value` in their initial environment (the engine gives
 * every agent SWARM_ID=<id>), excluding this process, with their environment
 * as read once.
 */
export async function environmentsWith(name: string, value: string): Promise<ProcEnv[]> {
  const found: ProcEnv[] = [];
  await Promise.all(
    (await listPids()).map(async (pid) => {
      if (pid === process.pid) return;
      const env = await processEnvironment(pid);
      if (env?.get(name) === value) found.push({ pid, env });
    }),
  );
  return found.sort((a, b) => a.pid - b.pid);
}

/** The pids of environmentsWith(NAME, value). */
export async function processesWithEnv(name: string, value: string): Promise<number[]> {
  return (await environmentsWith(name, value)).map((p) => p.pid);
}

/** Processes with `path` (or a path below it) among their command-line arguments, excluding this process. */
export async function processesWithArgUnder(path: string): Promise<number[]> {
  const found: number[] = [];
  await Promise.all(
    (await listPids()).map(async (pid) => {
      if (pid === process.pid) return;
      const cmdline = await readImageText(pid, 'cmdline');
      if (cmdline === undefined) return;
      if (cmdline.split('\0').some((arg) => arg === path || arg.startsWith(`${path}/`))) found.push(pid);
    }),
  );
  return found.sort((a, b) => a - b);
}
