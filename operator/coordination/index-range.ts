// The agents one run executes: ObjectiveSpec.indexRange, or all of them. One
// definition for V1, V2 and `cfn run`, so that every side counts, bounds and
// validates a shard's range alike.
import type { ObjectiveSpec } from './types.js';
import type { ProcEnv } from '../util/proc.js';

/** Agent indexes start..end-1 of a swarm (end exclusive). */
export interface IndexRange {
  start: number;
  end: number;
}

/** The range a spec runs: its indexRange, else 0..agents-1. */
export function runRange(spec: Pick<ObjectiveSpec, 'agents' | 'indexRange'>): IndexRange {
  return spec.indexRange ? { start: spec.indexRange.start, end: spec.indexRange.end } : { start: 0, end: spec.agents };
}

/** How many agents the range holds: the run's total. */
export const rangeSize = (r: IndexRange): number => r.end - r.start;

export const inRange = (r: IndexRange, index: number): boolean => Number.isInteger(index) && index >= r.start && index < r.end;

/** Whether a spec's range is the whole swarm (then nothing about it differs from a run without one). */
export const isWholeSwarm = (spec: Pick<ObjectiveSpec, 'agents' | 'indexRange'>): boolean => {
  const r = runRange(spec);
  return r.start === 0 && r.end === spec.agents;
};

/**
 * The agent processes among PROCS that belong to the range (their AGENT_INDEX):
 * another shard of the same swarm may run beside it on the same machine, and
 * its agents are not this run's to stop.
 */
export function agentsInRange(procs: readonly ProcEnv[], range: IndexRange): ProcEnv[] {
  return procs.filter(({ env }) => {
    const index = env.get('AGENT_INDEX');
    return index !== undefined && /^\d+$/.test(index) && inRange(range, Number(index));
  });
}

/** "start-end" as the bash engine's --index-range takes it (end exclusive). */
export const engineRangeArg = (r: IndexRange): string => `${r.start}-${r.end}`;

/** "agents 100..199 of 300": for messages. */
export const describeRange = (r: IndexRange, agents: number): string => `agents ${r.start}..${r.end - 1} of ${agents}`;

/**
 * Why a spec's indexRange, completedIndexes or failedIndexes do not fit
 * together, or undefined. The range must lie in 0..agents (0 <= start < end
 * <= agents); the earlier run's indexes inside the range.
 */
export function indexRangeProblem(
  spec: Pick<ObjectiveSpec, 'agents' | 'indexRange' | 'completedIndexes' | 'failedIndexes'>,
): { field: 'indexRange' | 'completedIndexes' | 'failedIndexes'; message: string } | undefined {
  const r = spec.indexRange;
  if (r) {
    if (!Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.end) || r.start < 0 || r.start >= r.end || r.end > spec.agents) {
      return { field: 'indexRange', message: `expected integers with 0 <= start < end <= agents (${spec.agents}), got {start: ${r.start}, end: ${r.end}}` };
    }
  }
  const range = runRange(spec);
  for (const field of ['completedIndexes', 'failedIndexes'] as const) {
    const bad = spec[field]?.find((i) => !inRange(range, i));
    if (bad !== undefined) return { field, message: `${bad} is outside the run's range ${range.start}..${range.end - 1}` };
  }
  return undefined;
}
