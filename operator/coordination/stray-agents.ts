// The agents a run left behind: every agent carries SWARM_ID=<id> (and
// AGENT_INDEX) in its environment, and so does whatever it started, also past
// a setsid or a double fork. V1 and V2 look for them the same way, before a
// resumed run (a dead coordinator's orphans) and after every run (what an
// agent left running in the background).
import { agentsInRange, isWholeSwarm, runRange } from './index-range.js';
import type { ObjectiveSpec } from './types.js';
import { environmentsWith, readProc, signalGroup, signalProcess } from '../util/proc.js';

/** This process and its ancestors: a coordinator started with SWARM_ID in its own environment is not a stray. */
async function ancestors(): Promise<Set<number>> {
  const out = new Set<number>([process.pid]);
  let pid = process.ppid;
  while (pid > 1 && !out.has(pid)) {
    out.add(pid);
    const info = await readProc(pid);
    if (!info) break;
    pid = info.ppid;
  }
  return out;
}

/** Rounds of look-and-kill: an agent's process may fork between one look and its kill. */
const KILL_ROUNDS = 5;

/** The processes of SPEC's agents still running (with an index range, only the range's). */
async function strays(spec: Pick<ObjectiveSpec, 'id' | 'agents' | 'indexRange'>): Promise<number[]> {
  const all = await environmentsWith('SWARM_ID', spec.id).catch(() => []);
  return (isWholeSwarm(spec) ? all : agentsInRange(all, runRange(spec))).map((p) => p.pid);
}

/**
 * SIGKILLs the processes of SPEC's agents still running: with an index range,
 * only those of the range (another shard of the swarm may run beside it). An
 * agent that leads its own process group (isolated slots) takes its group
 * with it. Looks again after each round that signalled something, since a
 * process may have forked meanwhile. Returns the pids signalled.
 */
export async function killStrayAgents(spec: Pick<ObjectiveSpec, 'id' | 'agents' | 'indexRange'>): Promise<number[]> {
  const killed = new Set<number>();
  let keep: ReadonlySet<number> | undefined;
  for (let round = 0; round < KILL_ROUNDS; round += 1) {
    const found = await strays(spec);
    if (found.length === 0) break;
    keep ??= await ancestors();
    let sent = 0;
    for (const pid of found) {
      if (keep.has(pid)) continue;
      const info = await readProc(pid);
      if (!info || info.state === 'Z') continue;
      if (info.pgid === pid ? signalGroup(pid, 'SIGKILL') : signalProcess(pid, 'SIGKILL')) {
        sent += 1;
        killed.add(pid);
      }
    }
    if (sent === 0) break;
  }
  return [...killed];
}
