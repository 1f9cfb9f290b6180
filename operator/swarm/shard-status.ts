// The per-shard view of a Swarm's status and its sum. Two ways, one per case:
// - a single-shard swarm keeps one status: its coordinator publishes the
//   top-level progress fields (field manager cfn-coordinator) and the operator
//   its decisions at the top level; status.shards[0] mirrors the operator's
//   fields (pod, node, version, phase, ...), so status.shards always tells
//   where a swarm runs;
// - a swarm of several shards: each coordinator publishes its progress into
//   its own status.shards[i] entry (field manager cfn-coordinator-s<i>), the
//   operator writes the operator fields of each entry and the top-level
//   figures as their sum (aggregateShards).
import { deliveryRate } from '../coordination/delivery.js';
import { compressRanges, expandRanges } from '../util/ranges.js';
import type { ShardStatus, SwarmResourceStatus } from '../api/swarm.js';
import type { ShardRange } from './shards.js';

/** Bound on status.failedAgents (the swarm-wide list). */
export const SWARM_FAILED_AGENTS_MAX = 50;

/** The fields of a status.shards entry the operator writes; the shard's coordinator writes the rest. */
export const SHARD_OPERATOR_FIELDS = [
  'index',
  'indexes',
  'pod',
  'node',
  'version',
  'phase',
  'attempts',
  'attemptTime',
  'reason',
  'message',
  'fallback',
] as const satisfies readonly (keyof ShardStatus)[];

/** The fields of a status.shards entry its shard's coordinator writes (its progress; the admission policy allows a shard pod these only). */
export const SHARD_COORDINATOR_FIELDS = [
  'agents',
  'completedAgents',
  'failedIndexes',
  'failedAgents',
  'coordinationTimeMs',
  'interruptedAgents',
  'rerunAgents',
  'result',
  'progressPod',
  'results',
] as const satisfies ReadonlyArray<keyof ShardStatus>;

/** The fields a shard's coordinator publishes (its progress). */
export type ShardProgress = Pick<ShardStatus, (typeof SHARD_COORDINATOR_FIELDS)[number]>;

/** The top-level fields the operator writes as the sum of the shards (sharded swarms only). */
export const AGGREGATED_FIELDS = [
  'agents',
  'deliveryRate',
  'completedAgents',
  'failedIndexes',
  'failedAgents',
  'coordinationTimeMs',
  'interruptedAgents',
  'rerunAgents',
  'results',
  'result',
] as const satisfies readonly (keyof SwarmResourceStatus)[];

/** "0-332": a shard's index range as status.shards[].indexes. */
export const rangeIndexes = (r: ShardRange): string => (r.end - r.start === 1 ? `${r.start}` : `${r.start}-${r.end - 1}`);

/** Entry `index` of status.shards, if any. */
export const shardEntry = (status: SwarmResourceStatus | undefined, index: number): ShardStatus | undefined => status?.shards?.find((e) => e.index === index);

/** The operator's fields of an entry only: applying a coordinator's field would take it over. */
export function operatorShardFields(entry: ShardStatus): ShardStatus {
  return pickDefined(entry, SHARD_OPERATOR_FIELDS) as ShardStatus;
}

/** The FIELDS of FROM that are set (what a server-side apply of them should carry). */
export function pickDefined(from: object, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const v = (from as Record<string, unknown>)[f];
    if (v !== undefined) out[f] = v;
  }
  return out;
}

/** The progress of one shard: the top-level fields of a single-shard swarm, else its entry's. */
export function shardProgress(status: SwarmResourceStatus | undefined, index: number, sharded: boolean): ShardProgress {
  const from: ShardProgress | undefined = sharded ? shardEntry(status, index) : status;
  if (!from) return {};
  return pickDefined(from, SHARD_COORDINATOR_FIELDS) as ShardProgress;
}

/**
 * The swarm-wide figures of a sharded swarm from its shards' progress:
 * agents and results summed (a shard that published nothing yet counts its
 * range as total, none done), delivery = completed / total, the index sets
 * united, the first SWARM_FAILED_AGENTS_MAX failed agents in shard order,
 * coordination time the longest shard's, the run's result once every shard
 * has one (the first shard's that did not complete, named).
 */
export function aggregateShards(
  ranges: readonly ShardRange[],
  progress: readonly ShardProgress[],
): Pick<SwarmResourceStatus, (typeof AGGREGATED_FIELDS)[number]> {
  let total = 0;
  let completed = 0;
  let failed = 0;
  let rerun = 0;
  let timeMs: number | undefined;
  const completedSet: number[] = [];
  const failedSet: number[] = [];
  const interrupted: number[] = [];
  const failedAgents: Array<{ index: number; reason: string }> = [];
  const results = progress.map((p) => p.results).filter((r): r is NonNullable<ShardProgress['results']> => r !== undefined);
  ranges.forEach((r, i) => {
    const p = progress[i] ?? {};
    total += p.agents?.total ?? r.end - r.start;
    completed += p.agents?.completed ?? 0;
    failed += p.agents?.failed ?? 0;
    rerun += p.rerunAgents ?? 0;
    if (p.coordinationTimeMs !== undefined) timeMs = Math.max(timeMs ?? 0, p.coordinationTimeMs);
    if (p.completedAgents) completedSet.push(...expandRanges(p.completedAgents));
    if (p.failedIndexes) failedSet.push(...expandRanges(p.failedIndexes));
    if (p.interruptedAgents) interrupted.push(...expandRanges(p.interruptedAgents));
    for (const a of p.failedAgents ?? []) if (failedAgents.length < SWARM_FAILED_AGENTS_MAX) failedAgents.push(a);
  });
  const out: Pick<SwarmResourceStatus, (typeof AGGREGATED_FIELDS)[number]> = {
    agents: { total, completed, failed },
    deliveryRate: deliveryRate(completed, total),
    completedAgents: compressRanges(completedSet),
    failedIndexes: compressRanges(failedSet),
  };
  if (failedAgents.length) out.failedAgents = failedAgents;
  if (timeMs !== undefined) out.coordinationTimeMs = timeMs;
  if (interrupted.length) {
    out.interruptedAgents = compressRanges(interrupted);
    out.rerunAgents = rerun;
  }
  const first = results[0];
  if (first) {
    const locations = [...new Set(results.map((r) => r.location))];
    const lastError = results.find((r) => r.lastError !== undefined)?.lastError;
    const pending = results.reduce((n, r) => n + (r.pending ?? 0), 0);
    out.results = {
      type: first.type,
      // One sink (s3, a claim every shard mounts) has one location; claims of their own are listed per shard.
      location:
        locations.length === 1 ? first.location : `${first.location} and ${locations.length - 1} more (status.shards[].results.location)`.slice(0, 4096),
      stored: results.reduce((n, r) => n + r.stored, 0),
      bytes: results.reduce((n, r) => n + r.bytes, 0),
      ...(results.some((r) => r.pending !== undefined) ? { pending } : {}),
      ...(lastError !== undefined ? { lastError } : {}),
    };
  }
  if (progress.length === ranges.length && progress.every((p) => p.result)) {
    const bad = progress.findIndex((p) => p.result?.status !== 'completed');
    out.result =
      bad < 0
        ? { status: 'completed', message: `${completed}/${total} agents completed over ${ranges.length} shards` }
        : { status: progress[bad]!.result!.status, message: `shard ${bad}: ${progress[bad]!.result!.message ?? progress[bad]!.result!.status}`.slice(0, 4096) };
  }
  return out;
}
