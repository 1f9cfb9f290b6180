// The coordinator pod's side of Swarm status: progress (agents, delivery =
// completed / total, the completed and the finally failed indexes, failures,
// the run's result), applied with its own field manager so it never touches
// the operator's decisions. Throttled: at most one write per interval,
// whatever the rate of responses. A shard of a swarm with several shards
// publishes into its own status.shards entry instead (field manager
// cfn-coordinator-s<i>), counting its index range only; the operator sums the
// shards (shard-status.ts).
import { GROUP_VERSION, SWARM_RESOURCE } from '../api/common.js';
import { resourcePath } from '../k8s/client.js';
import { deliveryRate } from '../coordination/delivery.js';
import { compressRanges, expandRanges } from '../util/ranges.js';
import { SHARD_FAILED_AGENTS_MAX } from '../api/swarm.js';
import { SWARM_FAILED_AGENTS_MAX } from '../swarm/shard-status.js';
import type { ShardStatus, SwarmResourceStatus } from '../api/swarm.js';
import type { AgentResponse } from '../coordination/types.js';
import type { KubeClient } from '../k8s/client.js';

export const COORDINATOR_FIELD_MANAGER = 'cfn-coordinator';
/** A shard's coordinator's field manager: each owns its own status.shards entry. */
export const shardFieldManager = (shard: number): string => `${COORDINATOR_FIELD_MANAGER}-s${shard}`;
/** The least publish interval. */
const MIN_PUBLISH_INTERVAL_MS = 1000;

/** The publish interval of a swarm of SHARDS shards: N shards do not write N times a second. */
export const publishIntervalMs = (shards: number): number => Math.max(MIN_PUBLISH_INTERVAL_MS, shards * 100);

export interface PublisherOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  total: number;
  /** This coordinator's pod (status.progressPod): tells the operator it runs, even before a readiness probe passes. */
  pod?: string;
  /** What an earlier coordinator of this swarm already published (resume). */
  previous?: Pick<SwarmResourceStatus, 'agents' | 'completedAgents' | 'failedIndexes' | 'failedAgents' | 'coordinationTimeMs' | 'interruptedAgents'>;
  intervalMs?: number;
  onError?: (err: unknown) => void;
  /** Where the results are stored and how many (status.results), read at each write. */
  results?: () => SwarmResourceStatus['results'];
  /** A shard of a sharded swarm: publish into status.shards[index] (its `indexes` as the operator wrote them). */
  shard?: { index: number; indexes: string };
}

/**
 * The completed and the finally failed indexes an earlier coordinator
 * published. A status from before failedIndexes existed listed every final
 * agent in completedAgents: those of its failedAgents (the first 50) count as
 * failed there, the rest as completed (the counts stay the published ones).
 */
export function finalIndexes(previous: Pick<SwarmResourceStatus, 'completedAgents' | 'failedIndexes' | 'failedAgents'> | undefined): {
  completed: number[];
  failed: number[];
} {
  const listed = expandRanges(previous?.completedAgents ?? '');
  if (previous?.failedIndexes !== undefined) {
    const failed = expandRanges(previous.failedIndexes);
    const f = new Set(failed);
    return { completed: listed.filter((i) => !f.has(i)), failed };
  }
  const failedKnown = new Set((previous?.failedAgents ?? []).map((a) => a.index));
  return { completed: listed.filter((i) => !failedKnown.has(i)), failed: listed.filter((i) => failedKnown.has(i)) };
}

export class StatusPublisher {
  private readonly completedSet: Set<number>;
  private readonly failedSet: Set<number>;
  private completed: number;
  private failed: number;
  private readonly failedAgents: Array<{ index: number; reason: string }>;
  /** Agents cut short by a stop of this or an earlier coordinator: they run again. */
  private readonly interrupted: Set<number>;
  private readonly startedAt = Date.now();
  private readonly priorMs: number;
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;
  private stopped = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly opts: PublisherOptions) {
    const prior = finalIndexes(opts.previous);
    this.completedSet = new Set(prior.completed);
    this.failedSet = new Set(prior.failed);
    this.completed = opts.previous?.agents?.completed ?? this.completedSet.size;
    this.failed = opts.previous?.agents?.failed ?? this.failedSet.size;
    this.failedAgents = [...(opts.previous?.failedAgents ?? [])];
    this.priorMs = opts.previous?.coordinationTimeMs ?? 0;
    this.interrupted = new Set(expandRanges(opts.previous?.interruptedAgents ?? ''));
  }

  /** Agents this coordinator's stop cut short (published with the next write). */
  onInterrupted(indexes: Iterable<number>): void {
    for (const i of indexes) this.interrupted.add(i);
    this.schedule();
  }

  /** Indexes that completed: the coordinator does not run them again. */
  completedIndexes(): number[] {
    return [...this.completedSet];
  }

  /** Indexes that failed finally: the coordinator does not run them again either. */
  failedIndexes(): number[] {
    return [...this.failedSet];
  }

  onResponse(r: AgentResponse): void {
    if (this.completedSet.has(r.index) || this.failedSet.has(r.index)) return;
    if (r.status === 'completed') {
      this.completedSet.add(r.index);
      this.completed++;
    } else {
      this.failedSet.add(r.index);
      this.failed++;
      if (this.failedAgents.length < (this.opts.shard ? SHARD_FAILED_AGENTS_MAX : SWARM_FAILED_AGENTS_MAX))
        this.failedAgents.push({ index: r.index, reason: (r.error ?? `exit code ${r.exitCode}`).slice(0, 1024) });
    }
    this.schedule();
  }

  /** Something published changed besides responses (status.results): write with the next interval. */
  touch(): void {
    this.schedule();
  }

  /** Writes now (and waits), with the run's final result when given. */
  async flush(result?: NonNullable<SwarmResourceStatus['result']>): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.dirty = false;
    const body = this.body(result);
    this.writing = this.writing.then(() => this.write(body));
    await this.writing;
  }

  /** No write after this one: a late update must not replace the final status. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.dirty) return;
      this.flush().catch((e: unknown) => this.opts.onError?.(e));
    }, this.opts.intervalMs ?? 1000);
  }

  private body(result?: NonNullable<SwarmResourceStatus['result']>): SwarmResourceStatus {
    const total = this.opts.total;
    const results = this.opts.results?.();
    return {
      agents: { total, completed: this.completed, failed: this.failed },
      deliveryRate: deliveryRate(this.completed, total),
      coordinationTimeMs: this.priorMs + (Date.now() - this.startedAt),
      completedAgents: compressRanges(this.completedSet),
      failedIndexes: compressRanges(this.failedSet),
      ...(this.failedAgents.length ? { failedAgents: this.failedAgents } : {}),
      ...(this.interrupted.size ? { interruptedAgents: compressRanges(this.interrupted), rerunAgents: this.interrupted.size } : {}),
      ...(result ? { result } : {}),
      ...(results ? { results } : {}),
      ...(this.opts.pod ? { progressPod: this.opts.pod } : {}),
    };
  }

  private async write(status: SwarmResourceStatus): Promise<void> {
    const shard = this.opts.shard;
    await this.opts.client.apply(
      resourcePath({ ...SWARM_RESOURCE, namespace: this.opts.namespace, name: this.opts.name }),
      {
        apiVersion: GROUP_VERSION,
        kind: 'Swarm',
        metadata: { name: this.opts.name, namespace: this.opts.namespace },
        status: shard ? { shards: [shardBody(shard, status)] } : status,
      },
      { fieldManager: shard ? shardFieldManager(shard.index) : COORDINATOR_FIELD_MANAGER, force: true, subresource: 'status' },
    );
  }
}

/** A shard's entry: its key and range (the operator's values), its progress (no deliveryRate: the operator computes the swarm's). */
function shardBody(shard: { index: number; indexes: string }, status: SwarmResourceStatus): ShardStatus {
  const { deliveryRate: _rate, ...progress } = status;
  return { index: shard.index, indexes: shard.indexes, ...(progress as Omit<ShardStatus, 'index' | 'indexes'>) };
}
