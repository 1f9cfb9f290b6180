// Who runs an objective: "<pid>:<start time>" of the coordinator process. The
// start time (from /proc/<pid>/stat) tells a live owner from a reused pid.
import { existsSync, readFileSync } from 'node:fs';

/** Start time of a live process; undefined when gone or a zombie (dead, not yet reaped). */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised comm: [0] state ... [19] starttime (field 22).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/** The owner token of a running process (undefined when it is not running). */
export function ownerTokenOf(pid: number): string | undefined {
  const started = startTime(pid);
  return started === undefined ? undefined : `${pid}:${started}`;
}

let own: string | undefined;

/** This process's owner token. */
export function ownerToken(): string {
  return (own ??= ownerTokenOf(process.pid) ?? `${process.pid}:?`);
}

/** Whether the process behind a token is still running (the same process, not a reused pid). */
export function isOwnerAlive(token: string): boolean {
  const [pidText, started] = token.split(':');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const now = startTime(pid);
  if (now !== undefined) return started === '?' || now === started;
  if (existsSync('/proc/self/stat')) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
