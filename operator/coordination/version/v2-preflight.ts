// A cheap TypeScript version of the V2 preflight, for `coordination.version:
// auto`: the bash engine needs a writable tmpfs root, bash >= 4 and enough file
// descriptors. The factory may inject the real bash preflight instead.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface PreflightResult {
  ok: boolean;
  /** Why it failed (or a short summary when it passed). */
  reason: string;
}

export type PreflightFn = () => PreflightResult;

export interface V2PreflightOptions {
  shmPath?: string;
  minFds?: number;
  /** The bash binary to check; default `bash` from PATH. */
  bash?: string;
}

let bashMajorCache = new Map<string, number | null>();

/** Major version of bash, or null when it cannot run; memoised (a fork costs ms). */
export function bashMajorVersion(bash = 'bash'): number | null {
  const hit = bashMajorCache.get(bash);
  if (hit !== undefined) return hit;
  const r = spawnSync(bash, ['-c', 'printf %s "${BASH_VERSINFO[0]}"'], { encoding: 'utf8', timeout: 2000 });
  const major = r.status === 0 && /^\d+$/.test(r.stdout) ? Number(r.stdout) : null;
  bashMajorCache.set(bash, major);
  return major;
}

/** For tests: forget memoised bash versions. */
export function resetPreflightCache(): void {
  bashMajorCache = new Map();
}

/** Soft open-file limit from /proc/self/limits; null where that file does not exist. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    if (soft === undefined) return null;
    return soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
  } catch {
    return null;
  }
}

/**
 * The shm root, or its nearest existing parent, must take a new directory: probed
 * by making and removing one (access() says yes to root even on read-only mounts).
 */
function checkShm(shmPath: string): string | undefined {
  let dir = shmPath;
  for (;;) {
    try {
      if (!statSync(dir).isDirectory()) return `${shmPath} not writable (${dir} is not a directory)`;
      rmdirSync(mkdtempSync(join(dir, '.cfn-preflight-')));
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || (dir !== shmPath && existsSync(dir))) return `${shmPath} not writable (${code ?? 'error'} on ${dir})`;
      const parent = dirname(dir);
      if (parent === dir) return `${shmPath} has no existing parent`;
      dir = parent;
    }
  }
}

export function v2Preflight(options: V2PreflightOptions = {}): PreflightResult {
  const shmPath = options.shmPath ?? '/dev/shm/cfn';
  const shmProblem = checkShm(shmPath);
  if (shmProblem) return { ok: false, reason: shmProblem };
  const major = bashMajorVersion(options.bash);
  if (major === null) return { ok: false, reason: `${options.bash ?? 'bash'} not runnable` };
  if (major < 4) return { ok: false, reason: `bash ${major} < 4` };
  const minFds = options.minFds ?? 1024;
  const fds = openFileLimit();
  if (fds !== null && fds < minFds) return { ok: false, reason: `open file limit ${fds} < ${minFds}` };
  return { ok: true, reason: `${shmPath} writable, bash ${major}, fd limit ${fds ?? 'unknown'}` };
}
