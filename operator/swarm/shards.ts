// How a Swarm splits into shards: contiguous agent index ranges, one
// coordinator pod each (the design's hybrid topology, with the operator as
// its root). The operator, the coordinator pods and the CLI all use these
// functions, so every side computes the same ranges from the same spec.
import { FLAT_MAX_AGENTS, MAX_SHARDS, swarmAgents } from '../api/swarm.js';
import type { SwarmSpec, SwarmResourceStatus } from '../api/swarm.js';

/** One shard's agents: indexes start..end-1 of the swarm. */
export interface ShardRange {
  shard: number;
  start: number;
  /** Exclusive. */
  end: number;
}

/** Whether a resource request is a non-zero quantity ("0", "0m" and 0 are none). */
const requested = (q: string | number | undefined): boolean => q !== undefined && !/^[+]?0*(\.0*)?[a-zA-Z]*$/.test(String(q));

/**
 * The number of shards of SPEC. A number is taken as it is (never more than
 * the agents). auto: one shard per FLAT_MAX_AGENTS agents; when the agent
 * container requests cpu the agents are heavy, so enough shards that every
 * agent runs at once (agents / agent.concurrency); topology hybrid means at
 * least two; topology flat exactly one. At most MAX_SHARDS.
 */
export function shardCount(spec: Pick<SwarmSpec, 'agents' | 'tasks' | 'shards' | 'topology' | 'agent'>): number {
  const agents = Math.max(1, swarmAgents(spec));
  if (spec.topology === 'flat') return 1;
  if (spec.shards !== 'auto') return Math.min(spec.shards, agents);
  let n = Math.ceil(agents / FLAT_MAX_AGENTS);
  if (requested(spec.agent.resources?.requests?.cpu)) n = Math.max(n, Math.ceil(agents / spec.agent.concurrency));
  if (spec.topology === 'hybrid') n = Math.max(n, 2);
  return Math.max(1, Math.min(n, MAX_SHARDS, agents));
}

/** SHARDS contiguous ranges over AGENTS indexes, sizes differing by at most one. */
export function shardRanges(agents: number, shards: number): ShardRange[] {
  if (!Number.isSafeInteger(agents) || agents < 1) throw new RangeError(`agents must be a positive integer, got ${agents}`);
  if (!Number.isSafeInteger(shards) || shards < 1 || shards > agents) throw new RangeError(`shards must be 1..${agents}, got ${shards}`);
  return Array.from({ length: shards }, (_, shard) => ({
    shard,
    start: Math.floor((shard * agents) / shards),
    end: Math.floor(((shard + 1) * agents) / shards),
  }));
}

type ShardedSwarm = { spec: Parameters<typeof shardCount>[0]; status?: Pick<SwarmResourceStatus, 'shardCount' | 'version'> | undefined };

/**
 * How many shards a Swarm runs as: decided once, with its version, and kept
 * in status.shardCount, so the operator and every coordinator pod agree
 * whatever a later release computes from the same spec. A swarm whose
 * version was decided without a shard count (an operator before shards) runs
 * as the one pod it started with.
 */
export function swarmShardCount(swarm: ShardedSwarm): number {
  if (swarm.status?.shardCount !== undefined) return swarm.status.shardCount;
  if (swarm.status?.version !== undefined) return 1;
  return shardCount(swarm.spec);
}

/** The ranges of a Swarm (swarmShardCount of them). */
export const swarmShardRanges = (swarm: ShardedSwarm): ShardRange[] =>
  shardRanges(Math.max(1, swarmAgents(swarm.spec)), Math.min(swarmShardCount(swarm), Math.max(1, swarmAgents(swarm.spec))));
