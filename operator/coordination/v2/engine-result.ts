// The result of one V2 engine run: what its exit code, status.json and the
// responses collected say (docs/v2-engine.md), and which agents a stop cut short.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentResponse, ObjectiveResult, ObjectiveSpec, RunStatus } from '../types.js';
import { runStatus } from '../delivery.js';
import { inRange, rangeSize, runRange } from '../index-range.js';
import type { IndexRange } from '../index-range.js';
import { lastLine } from './engine-process.js';
import { CoordinatorUnavailableError } from './engine-preflight.js';
import type { StatusFile } from './schemas.js';

/** Engine exit codes (docs/v2-engine.md). */
export const ENGINE_EXIT = { ok: 0, engineFailure: 1, usage: 2, preflight: 3, deadline: 4, sigint: 130, sigterm: 143 } as const;

export class EngineError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | undefined,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** The engine's status.json as a RunStatus. */
export function toRunStatus(s: StatusFile): RunStatus {
  return {
    objectiveId: s.objectiveId,
    status: s.status,
    agents: { total: s.agents.total, completed: s.agents.completed, failed: s.agents.failed },
    deliveryRate: s.deliveryRate,
    coordinationTime: s.coordinationTime,
    throughputAgentsPerSec: s.throughputAgentsPerSec,
  };
}

/** A status computed from the responses (and the agents final in an earlier run), for when status.json is missing or stale; it counts the run's range. */
export function statusFromResponses(spec: ObjectiveSpec, responses: readonly AgentResponse[], state: RunStatus['status'], elapsedMs: number): RunStatus {
  const completedNow = responses.filter((r) => r.status === 'completed').length;
  const completed = completedNow + (spec.completedIndexes?.length ?? 0);
  const failed = responses.length - completedNow + (spec.failedIndexes?.length ?? 0);
  return runStatus(spec.id, state, { total: rangeSize(runRange(spec)), completed, failed, completedThisRun: completedNow }, elapsedMs);
}

export interface EngineRun {
  spec: ObjectiveSpec;
  /** The responses collected. */
  responses: AgentResponse[];
  /** The last status.json read, if any. */
  fileStatus: StatusFile | undefined;
  /** undefined: the engine never ran, or a signal ended it. */
  exitCode: number | undefined;
  /** The run was stopped from outside (stop()). */
  stopping: boolean;
  elapsedMs: number;
  stderrTail: string;
}

/**
 * The objective's result. Throws CoordinatorUnavailableError when the engine's
 * own preflight failed (exit 3) and EngineError when it refused its arguments
 * (exit 2). `engineFailed`: the engine itself failed (a crash, a signal from
 * outside): the status says failed.
 */
export function runResult(run: EngineRun): { result: ObjectiveResult; engineFailed: boolean } {
  const { spec, responses, fileStatus, exitCode } = run;
  const done = (status: RunStatus) => ({ result: { status, responses }, engineFailed: false });
  if (run.stopping) return done(statusFromResponses(spec, responses, 'stopped', run.elapsedMs));
  if (exitCode === ENGINE_EXIT.preflight) {
    throw new CoordinatorUnavailableError(lastLine(run.stderrTail) || 'engine preflight failed');
  }
  if (exitCode === ENGINE_EXIT.usage) {
    throw new EngineError(`engine rejected its arguments: ${lastLine(run.stderrTail) || 'usage error'}`, exitCode);
  }
  if (exitCode === ENGINE_EXIT.ok || exitCode === ENGINE_EXIT.deadline) {
    if (fileStatus && fileStatus.status !== 'running') {
      const status = toRunStatus(fileStatus);
      if (exitCode === ENGINE_EXIT.deadline) status.status = 'timeout';
      return done(status);
    }
    const final = responses.length + (spec.completedIndexes?.length ?? 0) + (spec.failedIndexes?.length ?? 0);
    const state = exitCode === ENGINE_EXIT.deadline ? 'timeout' : final >= rangeSize(runRange(spec)) ? 'completed' : 'failed';
    return done(statusFromResponses(spec, responses, state, run.elapsedMs));
  }
  const status = fileStatus ? { ...toRunStatus(fileStatus), status: 'failed' as const } : statusFromResponses(spec, responses, 'failed', run.elapsedMs);
  return { result: { status, responses }, engineFailed: true };
}

/**
 * Agents of `range` whose attempt a stop cut short: their raw output files, or
 * the launcher relay's trace of them (work/agent-<i>.<pid>.out), are in the
 * root, and they have no response. Read after the engine exited, before the
 * root is removed.
 */
export async function interruptedAgents(root: string, range: IndexRange, delivered: ReadonlySet<number>): Promise<number[]> {
  const names = await readdir(join(root, 'work')).catch(() => [] as string[]);
  const found = new Set<number>();
  for (const name of names) {
    const m = /^agent-(0|[1-9]\d*)\.\d+\.out$/.exec(name);
    const index = m ? Number(m[1]) : -1;
    if (inRange(range, index) && !delivered.has(index)) found.add(index);
  }
  return [...found].sort((a, b) => a - b);
}
