// One reconcile of one swarm: decide the version once, hold everything while
// suspended, run each shard's machine (shard-run.ts), sum the shards into
// one status (phase, conditions, the swarm-wide figures of a sharded swarm),
// finish (judged by spec.successPolicy), then write the status (with the
// resourceVersion read as a precondition) and only then act. Intent first: a
// reconcile working from a stale cache fails its write with a 409 before it
// creates or deletes anything.
import { kubeTime, SWARM_RESOURCE as SWARMS } from '../api/common.js';
import { findCondition, setCondition } from '../api/conditions.js';
import { applyKstatus, swarmKstatus } from '../api/kstatus-conditions.js';
import { deliveryFigures, meetsMinDelivery } from '../coordination/delivery.js';
import { swarmAgents } from '../api/swarm.js';
import { resourcePath } from '../k8s/client.js';
import { isNotFound } from '../k8s/errors.js';
import { decideSwarmVersion } from '../coordination/version/decide-version.js';
import { podState } from './pod-state.js';
import { aggregateShards, rangeIndexes, shardEntry, shardProgress } from './shard-status.js';
import { NOT_RUN_REASONS, RUNNING_REASONS, ShardRun, STOPPING_POLL_MS } from './shard-run.js';
import { swarmShardRanges } from './shards.js';
import { applyOperatorStatus, FINALIZER, involved } from './swarm-write.js';
import type { ShardStatus, Swarm, SwarmResourceStatus } from '../api/swarm.js';
import type { ReconcileResult } from '../controller/controller.js';
import type { EventType } from '../k8s/events.js';
import type { PodState } from './pod-state.js';
import type { RunContext } from './shard-run.js';
import type { ShardRange } from './shards.js';
import type { SharedIdentities } from './swarm-identity.js';
import type { SwarmReconcilerDeps } from './reconciler-deps.js';

/** JSON with sorted keys: the status as read and as built compare equal whatever their key order. */
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );

/** The sooner of two requeues (undefined: none). */
function sooner(a: ReconcileResult | void, b: ReconcileResult | void): ReconcileResult | void {
  if (!a?.requeueAfterMs) return b?.requeueAfterMs ? b : a;
  if (!b?.requeueAfterMs) return a;
  return a.requeueAfterMs <= b.requeueAfterMs ? a : b;
}

export class SwarmRun implements RunContext {
  readonly status: SwarmResourceStatus;
  readonly now: Date;
  readonly ns: string;
  readonly sharded: boolean;
  private readonly ranges: ShardRange[];
  private readonly events: Array<[EventType, string, string]> = [];
  private readonly actions: Array<() => Promise<void>> = [];
  /**
   * Metric updates of this run's decisions, made once its status write landed:
   * a write that fails (a 409 from a stale cache) is retried, and the retry
   * decides the same again; counted before the write, it was counted twice.
   */
  private readonly counted: Array<() => void> = [];
  /** Set by an action that needs the swarm looked at again sooner than the step said. */
  private requeue: ReconcileResult | undefined;
  private shardRuns: ShardRun[] = [];
  /** The per-swarm coordinator identity, once made in this reconcile. */
  private identityMade: Promise<void> | undefined;

  constructor(
    readonly deps: SwarmReconcilerDeps,
    readonly swarm: Swarm,
    readonly shared: SharedIdentities,
    private readonly needsFinalizer = false,
  ) {
    this.status = structuredClone(swarm.status ?? {});
    this.now = deps.now?.() ?? new Date();
    this.ns = swarm.metadata.namespace ?? 'default';
    this.ranges = swarmShardRanges(swarm);
    this.sharded = this.ranges.length > 1;
  }

  async reconcile(): Promise<ReconcileResult | void> {
    const before = canonical(this.status);
    const result = await this.step();
    this.conclude();
    this.status.observedGeneration = this.swarm.metadata.generation;
    this.status.lastError = undefined;
    this.setCondition('Reconciled', 'True', 'Reconciled', 'the operator acted on the latest spec');
    this.status.conditions = applyKstatus(this.status.conditions, swarmKstatus(this.status), this.swarm.metadata.generation, this.now);
    let rv = this.swarm.metadata.resourceVersion;
    if (canonical(this.status) !== before) {
      const written = await applyOperatorStatus(this.deps.client, this.swarm, this.status);
      this.deps.wrote?.(written);
      rv = written.metadata?.resourceVersion ?? rv;
    }
    for (const count of this.counted) count();
    // The finalizer goes on alongside the first actions rather than before the
    // status write: one round trip less per new Swarm (its pods are owned
    // either way: owner references). An object already being deleted refuses
    // new finalizers; then its owned objects are garbage-collected.
    await Promise.all([
      this.needsFinalizer ? this.addFinalizer(rv) : undefined,
      (async () => {
        for (const act of this.actions) await act();
      })(),
    ]);
    // Events never hold up a reconcile (the recorder swallows and logs its errors).
    for (const [type, reason, message] of this.events) void this.deps.recorder.record(involved(this.swarm), type, reason, message);
    return this.requeue ?? result;
  }

  // RunContext: what the shards' runs share.
  event(type: EventType, reason: string, message: string): void {
    this.events.push([type, reason, message]);
  }
  act(action: () => Promise<void>): void {
    this.actions.push(action);
  }
  count(update: () => void): void {
    this.counted.push(update);
  }
  requeueSoon(r: ReconcileResult): void {
    this.requeue = r;
  }
  setCondition(type: string, status: 'True' | 'False' | 'Unknown', reason: string, message: string): void {
    this.status.conditions = setCondition(this.status.conditions, { type, status, reason, message }, this.swarm.metadata.generation, this.now);
  }
  identity(making?: Promise<void>): Promise<void> | undefined {
    if (making) this.identityMade = making;
    return this.identityMade;
  }
  async writeNow(): Promise<void> {
    this.conclude();
    const written = await applyOperatorStatus(this.deps.client, this.swarm, this.status, false);
    this.deps.wrote?.(written);
  }

  /** The whole finalizers list with ours added, precondition the resourceVersion we last wrote or read (never drops another's). */
  private async addFinalizer(resourceVersion: string | undefined): Promise<void> {
    const patched = await this.deps.client.mergePatch(resourcePath({ ...SWARMS, namespace: this.ns, name: this.swarm.metadata.name }), {
      metadata: { finalizers: [...(this.swarm.metadata.finalizers ?? []), FINALIZER], resourceVersion },
    });
    this.deps.wrote?.(patched);
  }

  private async step(): Promise<ReconcileResult | void> {
    const s = this.status;
    s.topology = this.sharded ? 'hybrid' : 'flat';
    if (s.phase === 'Succeeded' || s.phase === 'Failed') return this.finished();
    const pods = this.deps
      .listPods(this.ns, this.swarm.metadata.name)
      .map(podState)
      .filter((p): p is PodState => p !== undefined);
    this.shardRuns = this.ranges.map((r) => this.shardRun(r, pods));
    if (this.swarm.spec.suspend) return this.suspended();
    if (findCondition(s.conditions, 'Suspended')?.status === 'True') {
      this.setCondition('Suspended', 'False', 'Resumed', 'spec.suspend is false: the swarm runs');
      this.event('Normal', 'Resumed', 'spec.suspend is false: coordinator pods start, resuming past the agents whose final answer is in');
    }
    if (!s.version) this.decideVersion();
    s.activeVersion ??= s.version;
    let result: ReconcileResult | void = undefined;
    // One shard after the other: their actions (claims, pods) queue in shard order.
    for (const run of this.shardRuns) result = sooner(result, await run.step());
    return this.judge(result);
  }

  /** The version, once, when the swarm first runs (not while it is suspended). */
  private decideVersion(): void {
    const s = this.status;
    const d = decideSwarmVersion(this.swarm, this.deps.versionPolicy);
    s.version = d.version;
    s.versionReason = d.reason;
    // Decided with the version, never again (swarmShardCount).
    s.shardCount = this.ranges.length;
    if (d.rollout) {
      s.rollout = { ...d.rollout, time: this.now.toISOString() };
      const routed = { policy: `${this.ns}/${d.rollout.policy}`, version: d.version };
      this.counted.push(() => this.deps.metrics?.rolloutRoutedTotal.inc(routed));
    }
    s.activeVersion = d.version;
    s.phase = 'Pending';
    s.startTime = kubeTime(this.now);
    s.coordinatorAttempts = 0;
    for (const run of this.shardRuns) {
      run.entry.version = d.version;
      run.entry.attempts ??= 0;
    }
    this.event('Normal', 'VersionSelected', `coordination ${d.version}: ${d.reason}${this.sharded ? ` (${this.ranges.length} shards)` : ''}`);
    this.deps.logger.info(
      { namespace: this.ns, name: this.swarm.metadata.name, version: d.version, reason: d.reason, shards: this.ranges.length },
      'version selected',
    );
  }

  /**
   * spec.suspend: nothing is created; running pods are stopped gracefully
   * (their interrupted agents run again on resume). Phase Pending, condition
   * Suspended=True; no start deadline runs.
   */
  private async suspended(): Promise<ReconcileResult | void> {
    const s = this.status;
    let stopping = false;
    for (const run of this.shardRuns) stopping = (await run.suspend()) || stopping;
    s.phase = 'Pending';
    if (findCondition(s.conditions, 'Suspended')?.status !== 'True')
      this.event('Normal', 'Suspended', 'spec.suspend is true: no coordinator pod runs until it is false');
    this.setCondition(
      'Suspended',
      'True',
      'Suspended',
      stopping ? 'spec.suspend is true: stopping the coordinator pods' : 'spec.suspend is true: no coordinator pod runs',
    );
    return stopping ? { requeueAfterMs: STOPPING_POLL_MS } : undefined;
  }

  /** Shard `r`'s run: its entry (a single-shard swarm's from the top-level fields, see shard-status.ts), its progress, its pods. */
  private shardRun(r: ShardRange, pods: readonly PodState[]): ShardRun {
    const s = this.status;
    const indexes = rangeIndexes(r);
    let entry: ShardStatus;
    if (this.sharded) {
      entry = { ...(shardEntry(s, r.shard) ?? { index: r.shard, indexes, phase: 'Pending' }), index: r.shard, indexes };
    } else {
      const ready = findCondition(s.conditions, 'CoordinatorReady');
      const mirrored = shardEntry(s, 0);
      entry = {
        index: 0,
        indexes,
        phase: s.phase ?? 'Pending',
        ...(s.coordinatorPod ? { pod: s.coordinatorPod } : {}),
        ...(mirrored?.node ? { node: mirrored.node } : {}),
        ...(s.activeVersion ? { version: s.activeVersion } : {}),
        ...(s.coordinatorAttempts !== undefined ? { attempts: s.coordinatorAttempts } : {}),
        ...(s.coordinatorAttemptTime ? { attemptTime: s.coordinatorAttemptTime } : {}),
        ...(mirrored?.reason
          ? { reason: mirrored.reason, ...(mirrored.message ? { message: mirrored.message } : {}) }
          : ready
            ? { reason: ready.reason, message: ready.message }
            : {}),
        ...(s.fallback ? { fallback: s.fallback } : {}),
      };
      // A finished single-shard swarm's shard is final with it.
      if (s.phase === 'Succeeded' || s.phase === 'Failed') entry.phase = s.phase;
    }
    return new ShardRun(
      this,
      r,
      entry,
      shardProgress(this.swarm.status, r.shard, this.sharded),
      pods.filter((p) => p.shard === r.shard),
    );
  }

  /**
   * The swarm from its shards: final once every shard is (a failed shard
   * fails the swarm with its reason; else spec.successPolicy judges the
   * delivery over all shards), else FallingBack while a shard falls back,
   * Running while any runs or finished, Pending before.
   */
  private async judge(result: ReconcileResult | void): Promise<ReconcileResult | void> {
    const s = this.status;
    this.aggregate();
    const entries = this.shardRuns.map((r) => r.entry);
    if (entries.every((e) => e.phase === 'Succeeded' || e.phase === 'Failed')) return this.complete();
    if (entries.some((e) => e.phase === 'FallingBack')) s.phase = 'FallingBack';
    else if (entries.some((e) => e.phase === 'Running' || e.phase === 'Succeeded' || e.phase === 'Failed')) s.phase = 'Running';
    else s.phase = 'Pending';
    return result;
  }

  /**
   * Every shard's coordinator finished: Succeeded (condition Complete) only
   * when the completed agents meet spec.successPolicy.minDeliveryRate, else
   * Failed (DeliveryBelowSuccessPolicy), with the figures; a shard that failed
   * fails the swarm with its reason. No published progress means no agent is
   * known to have completed.
   */
  private complete(): Promise<ReconcileResult | void> {
    const s = this.status;
    s.completionTime ??= kubeTime(this.now);
    const failed = this.shardRuns.find((r) => r.entry.phase === 'Failed');
    if (failed) {
      const e = failed.entry;
      const message = `${this.sharded ? `shard ${e.index}: ` : ''}${e.message ?? 'failed'}`;
      this.fail(e.reason ?? 'Failed', message, false);
    } else {
      const agents = this.progress().agents ?? { total: swarmAgents(this.swarm.spec), completed: 0, failed: 0 };
      const min = this.swarm.spec.successPolicy.minDeliveryRate;
      const figures = deliveryFigures(agents);
      if (meetsMinDelivery(agents.completed, agents.total, min)) {
        s.phase = 'Succeeded';
        const msg = `${figures} >= ${min}%`;
        this.setCondition('Complete', 'True', 'Completed', msg);
        this.event('Normal', 'Completed', msg);
      } else {
        this.fail('DeliveryBelowSuccessPolicy', `${figures} < ${min}% (spec.successPolicy.minDeliveryRate)`, true);
      }
    }
    // Observed for runs that ended, not for a swarm failed before one did.
    if (!this.shardRuns.some((r) => r.entry.phase === 'Failed' && NOT_RUN_REASONS.has(r.entry.reason ?? ''))) {
      const seconds = (this.progress().coordinationTimeMs ?? 0) / 1000;
      const version = s.activeVersion ?? 'v1';
      this.counted.push(() => this.deps.metrics?.swarmCoordinationSeconds.observe({ version }, seconds));
    }
    return this.finished();
  }

  /** The swarm-wide progress: the coordinator's top-level fields, or the sum of the shards'. */
  private progress(): Pick<SwarmResourceStatus, 'agents' | 'coordinationTimeMs' | 'results'> {
    return this.sharded ? this.status : (this.swarm.status ?? {});
  }

  /**
   * What the shards' entries say, written where it belongs: a single-shard
   * swarm's pod, attempts and version at the top level; a sharded swarm's
   * figures summed; status.shards (operator fields) for both; conditions
   * CoordinatorReady and ResultsStored.
   */
  private conclude(): void {
    const s = this.status;
    if (this.shardRuns.length === 0) return;
    const entries = this.shardRuns.map((r) => r.entry);
    s.shards = entries.map((e) => Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)) as ShardStatus);
    if (this.sharded) {
      this.aggregate();
      s.activeVersion = entries.some((e) => e.version === 'v1') ? 'v1' : (s.version ?? s.activeVersion);
      s.coordinatorPod = undefined;
      s.coordinatorAttempts = undefined;
      s.coordinatorAttemptTime = undefined;
    } else {
      const e = entries[0]!;
      if (e.pod !== undefined) s.coordinatorPod = e.pod;
      if (e.attempts !== undefined) s.coordinatorAttempts = e.attempts;
      if (e.attemptTime !== undefined) s.coordinatorAttemptTime = e.attemptTime;
      if (e.version !== undefined && s.version) s.activeVersion = e.version;
    }
    this.coordinatorReady(entries);
    this.resultsStored();
  }

  /** A sharded swarm's figures: the sum of its shards' progress. */
  private aggregate(): void {
    if (this.sharded)
      Object.assign(
        this.status,
        aggregateShards(
          this.ranges,
          this.shardRuns.map((r) => r.progress),
        ),
      );
  }

  /**
   * CoordinatorReady from the shards: a single shard's reason and message as
   * they are; a sharded swarm's True once every unfinished shard runs, else
   * False with the first waiting shard's reason and how many run.
   */
  private coordinatorReady(entries: ShardStatus[]): void {
    const final = (e: ShardStatus) => e.phase === 'Succeeded' || e.phase === 'Failed';
    if (!this.sharded) {
      const e = entries[0]!;
      if (e.reason === undefined) return;
      const failed = this.status.phase === 'Failed' ? findCondition(this.status.conditions, 'Failed') : undefined;
      if (failed) this.setCondition('CoordinatorReady', 'False', failed.reason, failed.message);
      else this.setCondition('CoordinatorReady', RUNNING_REASONS.has(e.reason) ? 'True' : 'False', e.reason, e.message ?? '');
      return;
    }
    const running = entries.filter((e) => RUNNING_REASONS.has(e.reason ?? ''));
    const waiting = entries.filter((e) => !final(e) && !RUNNING_REASONS.has(e.reason ?? ''));
    const done = entries.filter(final).length;
    const counts = `${running.length}/${entries.length} shards running${done ? `, ${done} finished` : ''}`;
    const first = waiting[0];
    if (first) {
      const more = waiting.length > 1 ? ` (and ${waiting.length - 1} more shards waiting)` : '';
      this.setCondition(
        'CoordinatorReady',
        'False',
        first.reason ?? 'Pending',
        `${counts}; shard ${first.index} ${first.phase ?? 'Pending'}: ${first.message ?? ''}${more}`.slice(0, 32768),
      );
    } else if (running.length) this.setCondition('CoordinatorReady', 'True', 'ShardsReady', counts);
    else {
      const failed = this.status.phase === 'Failed' ? findCondition(this.status.conditions, 'Failed') : undefined;
      this.setCondition(
        'CoordinatorReady',
        'False',
        failed?.reason ?? 'PodSucceeded',
        failed?.message ?? `all ${entries.length} shards' coordinators finished`,
      );
    }
  }

  /**
   * ResultsStored, from status.results (the coordinator's, or the shards'
   * sum): False with the sink's error while storing fails (a full volume, an
   * unreachable store). No counts in the message: progress would then cost a
   * status write per update.
   */
  private resultsStored(): void {
    const r = this.sharded ? this.status.results : this.swarm.status?.results;
    if (!r) return;
    if (r.lastError !== undefined) this.setCondition('ResultsStored', 'False', 'StoreFailing', `storing results at ${r.location} fails: ${r.lastError}`);
    else this.setCondition('ResultsStored', 'True', 'Stored', `results are stored at ${r.location}`);
  }

  /** The swarm Failed; `announce`: with an event of its own (a shard's failure had its event already). */
  private fail(reason: string, message: string, announce: boolean): void {
    const s = this.status;
    s.phase = 'Failed';
    s.completionTime ??= kubeTime(this.now);
    this.setCondition('Failed', 'True', reason, message.slice(0, 32768));
    if (announce) this.event('Warning', reason, message);
  }

  /** Finished swarms only wait for their TTL. */
  private async finished(): Promise<ReconcileResult | void> {
    const ttl = this.swarm.spec.ttlSecondsAfterFinished;
    if (ttl === undefined || !this.status.completionTime) return;
    const due = Date.parse(this.status.completionTime) + ttl * 1000 - this.now.getTime();
    if (due > 0) return { requeueAfterMs: due };
    this.event('Normal', 'TTLExpired', `deleting swarm ${ttl}s after it finished`);
    await this.deps.client.delete(resourcePath({ ...SWARMS, namespace: this.ns, name: this.swarm.metadata.name })).catch((e: unknown) => {
      if (!isNotFound(e)) throw e;
    });
  }
}
