// The agents a run left behind: every agent carries SWARM_ID=<id> (and
// AGENT_INDEX) in its environment, and so does whatever it started, also past
// a setsid or a double fork. V1 and V2 look for them the same way, before a
// resumed run (a dead coordinator's orphans) and after every run (what an
// agent left running in the background).
import { agentsInRange, isWholeSwarm, runRange } from './index-range.js';
import type { ObjectiveSpec } from './types.js';
import { processesWithEnv, readProc, signalGroup, signalProcess } from '../util/proc.js';

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

/**
 * SIGKILLs the processes of SPEC's agents still running: with an index range,
 * only those of the range (another shard of the swarm may run beside it). An
 * agent that leads its own process group (isolated slots) takes its group
 * with it. Returns the pids signalled.
 */
export async function killStrayAgents(spec: Pick<ObjectiveSpec, 'id' | 'agents' | 'indexRange'>): Promise<number[]> {
  const all = await processesWithEnv('SWARM_ID', spec.id).catch(() => [] as number[]);
  const candidates = isWholeSwarm(spec) ? all : await agentsInRange(all, runRange(spec));
  if (candidates.length === 0) return [];
  const keep = await ancestors();
  const killed: number[] = [];
  for (const pid of candidates) {
    if (keep.has(pid)) continue;
    const info = await readProc(pid);
    if (!info) continue;
    const sent = info.pgid === pid ? signalGroup(pid, 'SIGKILL') : signalProcess(pid, 'SIGKILL');
    if (sent) killed.push(pid);
  }
  return killed;
}
