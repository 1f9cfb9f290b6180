// The run's result: a human table, or the one JSON object of `--json`.
import type { AgentResponse, CoordinationVersion, RunStatus } from '../coordination/types.js';
import type { IndexRange } from '../coordination/index-range.js';

export interface RunSummary {
  objectiveId: string;
  status: RunStatus['status'];
  agents: { total: number; completed: number; failed: number };
  deliveryRate: number;
  coordinationTime: number;
  throughputAgentsPerSec: number;
  /** The version that actually ran (v1 after a fallback). */
  version: CoordinationVersion;
  /** Why that version was chosen (flag, env, config, rollout bucket, auto preflight). */
  versionReason?: string;
  /** Present when V2 was chosen but could not start and V1 ran instead. */
  fallback?: { from: 'v2'; to: 'v1'; reason: string; elapsedMs: number };
  /** The agents that ran, start..end-1 (end exclusive): all of them, or the shard's. */
  indexRange: IndexRange;
  /** Present with --shard: shard `index` (0-based) of `count`. */
  shard?: { index: number; count: number };
  /** Present only when the run could not produce a status (why). */
  error?: string;
}

export function toSummary(
  status: RunStatus,
  version: CoordinationVersion,
  choice: Pick<RunSummary, 'versionReason' | 'fallback' | 'indexRange' | 'shard'>,
): RunSummary {
  return {
    objectiveId: status.objectiveId,
    status: status.status,
    agents: { ...status.agents },
    deliveryRate: status.deliveryRate,
    coordinationTime: status.coordinationTime,
    throughputAgentsPerSec: status.throughputAgentsPerSec,
    version,
    ...(choice.versionReason !== undefined ? { versionReason: choice.versionReason } : {}),
    ...(choice.fallback ? { fallback: { ...choice.fallback } } : {}),
    indexRange: { ...choice.indexRange },
    ...(choice.shard ? { shard: { ...choice.shard } } : {}),
  };
}

/** Failed agents listed in the table, the rest counted. */
export const FAILURES_SHOWN = 5;

/** Table rows naming the first failed agents and their errors (most useful on a terminal). */
export function failureRows(failures: readonly AgentResponse[], failedTotal = failures.length): [string, string][] {
  const rows = failures.slice(0, FAILURES_SHOWN).map((r, i): [string, string] => {
    // An agent wrote it: no control character (a terminal escape) reaches the terminal.
    const error = (r.error ?? '')
      .split('\n')[0]!
      .slice(0, 200)
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
    return [i === 0 ? 'failures' : '', `agent ${r.index}: exit ${r.exitCode ?? 'none'}${error ? `, ${error}` : ''}`];
  });
  const more = failedTotal - rows.length;
  if (rows.length && more > 0) rows.push(['', `... and ${more} more`]);
  return rows;
}

export function formatTable(s: RunSummary, extra: readonly [string, string][] = []): string {
  const rows: [string, string][] = [
    ['swarm', s.objectiveId],
    ['status', s.status],
    ['coordinator', `${s.version}${s.fallback ? `, fallback from v2 after ${s.fallback.elapsedMs} ms: ${s.fallback.reason}` : ''}`],
    ...(s.versionReason !== undefined ? ([['chosen by', s.versionReason]] as [string, string][]) : []),
    ...(s.shard ? ([['shard', `${s.shard.index}/${s.shard.count}: agents ${s.indexRange.start}..${s.indexRange.end - 1}`]] as [string, string][]) : []),
    ['agents', `${s.agents.total} total, ${s.agents.completed} completed, ${s.agents.failed} failed`],
    ['delivery', `${s.deliveryRate.toFixed(1)}%`],
    ['time', `${(s.coordinationTime / 1000).toFixed(2)} s`],
    ['throughput', `${s.throughputAgentsPerSec.toFixed(1)} agents/s`],
    ...extra,
    ...(s.error ? ([['error', s.error]] as [string, string][]) : []),
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n';
}
