// One shard's coordinator pod, one reconcile: create it, report a pod that
// waits (scheduling, image, quota) as exactly that, fall back from V2 to V1
// only when V2 itself failed (the V1 pod starts once the V2 pod is gone),
// replace a coordinator lost from outside with the same version (the
// replacement resumes past the shard's completed and failed indexes), and
// note when its coordinator finished. It reads and writes its own
// status.shards entry only (the swarm's fallback record aside): the other
// shards never notice. The swarm-wide verdict is swarm-run.ts's.
import { kubeTime } from '../api/common.js';
import { resourcePath } from '../k8s/client.js';
import { errorMessage, isAlreadyExists, isNotFound, KubeApiError } from '../k8s/errors.js';
import { INVALID_TASKS_PREFIX } from './swarm-tasks.js';
import { isNotStoredMessage } from '../results/result-writer.js';
import { coordinatorPod, coordinatorPodName } from './coordinator-pod.js';
import { coordinatorRbac, SHARED_COORDINATOR } from './coordinator-rbac.js';
import { ensureIdentity } from './swarm-identity.js';
import { FIELD_MANAGER } from './swarm-write.js';
import { podState } from './pod-state.js';
import { claimProblem, claimVerdict, resultsClaim, resultsClaimName } from './results-claim.js';
import type { ShardStatus, Swarm, SwarmResourceStatus } from '../api/swarm.js';
import type { ReconcileResult } from '../controller/controller.js';
import type { CoordinationVersion } from '../coordination/types.js';
import type { EventType } from '../k8s/events.js';
import type { PodCondition, PodState } from './pod-state.js';
import type { ShardProgress } from './shard-status.js';
import type { ShardRange } from './shards.js';
import type { SharedIdentities } from './swarm-identity.js';
import type { SwarmReconcilerDeps } from './reconciler-deps.js';

/** Replacements of a lost coordinator before its shard (and so the swarm) is declared Failed. */
export const MAX_COORDINATOR_ATTEMPTS = 5;

/**
 * The bounded label of swarm_fallback_total: which of V2's own failures it
 * was. Nothing outside V2 (scheduling, image pulls, quota, eviction, deletion)
 * is a fallback, so none has a category.
 */
export type FallbackCategory = 'preflight' | 'startup_timeout' | 'crashed' | 'oom_killed';

/** How long to wait before creating a pod again after the API server refused it (quota, admission). */
const CREATE_REFUSED_RETRY_MS = 10_000;
/** How often to look again while a same-named results claim is being deleted. */
const CLAIM_WAIT_POLL_MS = 2000;
/** How often to read an unbound claim again while it holds a pod from being scheduled (claims are not watched). */
const CLAIM_PROBLEM_POLL_MS = 5000;
/** How often to look again while a coordinator pod is being stopped. */
export const STOPPING_POLL_MS = 1000;
/**
 * A pod still there this long after its deletionTimestamp has no kubelet to
 * stop it (its node is unreachable): waiting longer would hold the swarm
 * forever, so its successor starts and the pod is force-deleted.
 */
export const STUCK_TERMINATING_MS = 60_000;

/** Shard failures of the operator's judging, not of a run: no coordination time to observe. */
export const NOT_RUN_REASONS: ReadonlySet<string> = new Set(['StartDeadlineExceeded', 'CoordinatorLost', 'V2Unavailable']);
/** Shard reasons that say its coordinator runs (CoordinatorReady=True). */
export const RUNNING_REASONS: ReadonlySet<string> = new Set(['PodReady', 'Progressing']);
/** The shard's reason from its replacement until the new pod is bound to a node: why it moved, from where. */
export const MOVED_REASON = 'CoordinatorLost';
/** The shard's reason while the swarm is suspended (its pod stopped, none created). */
export const SUSPENDED_REASON = 'Suspended';

/** What a shard's run shares with the swarm's run (swarm-run.ts): the reconcile's status, its queues of actions and events. */
export interface RunContext {
  readonly deps: SwarmReconcilerDeps;
  readonly swarm: Swarm;
  readonly shared: SharedIdentities;
  /** The swarm's status being built: a fallback is recorded at the top level too. */
  readonly status: SwarmResourceStatus;
  readonly now: Date;
  readonly ns: string;
  /** The swarm has more than one shard: events and messages name the shard. */
  readonly sharded: boolean;
  event(type: EventType, reason: string, message: string): void;
  /** Runs after the status write landed, in order. */
  act(action: () => Promise<void>): void;
  /** Counts a metric once the status write landed. */
  count(update: () => void): void;
  requeueSoon(r: ReconcileResult): void;
  setCondition(type: string, status: 'True' | 'False' | 'Unknown', reason: string, message: string): void;
  /** Writes the status as it is now (no precondition): a refused creation says so at once. */
  writeNow(): Promise<void>;
  /** The swarm's own coordinator identity being made in this reconcile: the first shard's pod creation records it, later ones wait for it. */
  identity(making?: Promise<void>): Promise<void> | undefined;
}

export class ShardRun {
  constructor(
    private readonly ctx: RunContext,
    readonly range: ShardRange,
    /** The shard's status entry: its operator fields are this run's to change. */
    readonly entry: ShardStatus,
    /** What its coordinator published, as read. */
    readonly progress: ShardProgress,
    /** The swarm's pods of this shard. */
    private readonly pods: readonly PodState[],
  ) {}

  private get shard(): number {
    return this.range.shard;
  }

  /** "shard 2: " on a sharded swarm's messages, nothing on a single shard's. */
  private get named(): string {
    return this.ctx.sharded ? `shard ${this.shard}: ` : '';
  }

  private event(type: EventType, reason: string, message: string): void {
    this.ctx.event(type, reason, `${this.named}${message}`);
  }

  private state(reason: string, message: string): void {
    this.entry.reason = reason;
    this.entry.message = message.slice(0, 4096);
  }

  async step(): Promise<ReconcileResult | void> {
    const e = this.entry;
    const version = e.version ?? this.ctx.status.version ?? 'v1';
    e.version = version;
    if (e.phase === 'Succeeded' || e.phase === 'Failed') return;
    const pod = await this.activePod();
    e.node = pod?.node;
    if (pod) e.pod = pod.name;
    // A fallback was decided: V1 starts once the V2 pod is gone or terminated.
    if (e.phase === 'FallingBack' && e.version === 'v2') return this.switchToV1(pod);
    // Stopped by a suspend: a new attempt resumes once the stopped pod is gone
    // (a pod that finished or failed on its own is judged as such below).
    if (e.reason === SUSPENDED_REASON) {
      const c = pod?.condition;
      if (c?.kind === 'terminating' && c.until !== undefined && !this.stuck(c)) return { requeueAfterMs: STOPPING_POLL_MS };
      if (!pod || c?.kind === 'lost' || c?.kind === 'crashed' || c?.kind === 'terminating') {
        if (pod) this.deletePod(pod.name);
        return this.createPod(version, (e.attempts ?? 0) > 0 ? 'CoordinatorResumed' : 'CoordinatorCreated');
      }
    }
    if (!pod) {
      if ((e.attempts ?? 0) === 0) return this.createPod(version, 'CoordinatorCreated');
      // Recorded but never seen: the creation after the status write did not
      // happen (an error, a crash) or was refused (quota, admission). Create
      // the same attempt again, within the start deadline.
      const last = e.reason;
      // Held back by its results claim: no attempt was recorded for it.
      if (last === 'ResultsClaimPending') return this.createPod(version, 'CoordinatorCreated');
      if (last === 'PodCreated' || last === MOVED_REASON || last === 'CreateRefused') {
        const since = Date.parse(e.attemptTime ?? this.ctx.status.startTime ?? '') || this.ctx.now.getTime();
        if (last === 'CreateRefused' && this.startDeadlinePassed(since)) {
          this.fail(
            'StartDeadlineExceeded',
            `no coordinator pod within ${this.ctx.swarm.spec.coordination.startDeadlineSeconds}s: ${e.message ?? 'creation refused'}`,
          );
          return;
        }
        return this.createPod(version, 'CoordinatorCreated', true);
      }
      return this.replace(`coordinator pod ${e.pod ?? ''} is gone`.replace('  ', ' '));
    }
    const c = pod.condition;
    switch (c.kind) {
      case 'succeeded':
        return this.complete();
      case 'preflight-failed':
        return this.ownFailure(pod, c.reason, 'preflight');
      case 'crashed':
        return this.ownFailure(
          pod,
          `${pod.version === 'v2' ? 'V2 ' : ''}coordinator failed: ${c.reason}`,
          /OOMKilled/.test(c.reason) ? 'oom_killed' : 'crashed',
        );
      case 'lost':
        return this.replace(c.reason, pod);
      case 'terminating':
        if (this.stuck(c))
          return this.replace(
            `coordinator pod ${pod.name} still terminating ${STUCK_TERMINATING_MS / 1000}s past its deletion deadline (node unreachable?)`,
            pod,
          );
        // Not being deleted: its container ended well, the phase follows.
        if (c.until === undefined) return { requeueAfterMs: STOPPING_POLL_MS };
        // Its successor must not run beside it: wait until it is gone.
        this.state('PodTerminating', `coordinator pod ${pod.name}: ${c.reason}, waiting for it to stop`);
        return { requeueAfterMs: STOPPING_POLL_MS };
      case 'ready':
        this.state('PodReady', `coordinator pod ${pod.name} is ready`);
        e.phase = 'Running';
        return;
      case 'running': {
        // Ready once already: NotReady now (a probe timing out on a loaded node,
        // health.json removed as the run ends) is no startup failure; a dead pod
        // shows as crashed, lost or succeeded. Found by the e2e suite on a real kubelet.
        if (e.phase === 'Running') return;
        // Progress published by this very pod: it passed preflight and runs,
        // though a short run can end before its first readiness probe passes
        // (health.json is removed as the run ends). Not a startup timeout.
        if (this.progress.progressPod === pod.name) {
          const agents = this.progress.agents;
          const done = agents ? ` (${agents.completed + agents.failed}/${agents.total} agents done)` : '';
          this.state('Progressing', `coordinator pod ${pod.name} publishes progress${done}`);
          e.phase = 'Running';
          return;
        }
        this.state('PodStarting', `coordinator pod ${pod.name} runs${pod.node ? ` on ${pod.node}` : ''}, not ready yet`);
        if (pod.version !== 'v2') return;
        // The clock starts when the container runs: time spent waiting for a
        // node, an image or a volume is not V2's to answer for.
        const limitS = this.ctx.swarm.spec.coordination.fallbackTimeoutSeconds;
        const waited = this.ctx.now.getTime() - c.startedAt;
        if (waited >= limitS * 1000) return this.ownFailure(pod, `V2 coordinator not ready within ${limitS}s of its container starting`, 'startup_timeout');
        return { requeueAfterMs: limitS * 1000 - waited + 50 };
      }
      case 'starting':
      case 'blocked':
        return this.waiting(pod, c);
    }
  }

  /**
   * Stops the shard's pod for a suspend (gracefully: its coordinator
   * publishes what it delivered and the agents it interrupted, which run
   * again on resume). True while a pod of the shard is still there.
   */
  async suspend(): Promise<boolean> {
    const e = this.entry;
    if (e.phase === 'Succeeded' || e.phase === 'Failed') return false;
    const pod = (e.attempts ?? 0) > 0 ? await this.activePod() : undefined;
    // A fallback under way ends with the V2 pod stopped: the shard resumes on V1.
    if (e.phase === 'FallingBack') e.version = 'v1';
    e.phase = 'Pending';
    e.node = pod?.node;
    if (!pod || pod.ended) {
      if (pod) this.deletePod(pod.name);
      this.state(SUSPENDED_REASON, 'the swarm is suspended (spec.suspend): no coordinator pod runs');
      return false;
    }
    if (this.stuck(pod.condition)) this.deletePod(pod.name);
    else if (pod.condition.kind !== 'terminating') {
      this.deletePod(pod.name, true);
      this.event('Normal', 'Suspended', `stopping coordinator pod ${pod.name}: the swarm is suspended; its interrupted agents run again on resume`);
    }
    this.state(SUSPENDED_REASON, `the swarm is suspended (spec.suspend): stopping coordinator pod ${pod.name}`);
    return true;
  }

  /**
   * A pod that does not run yet: reported as what it waits for (the
   * scheduler's or kubelet's own words, a Warning event when that changes),
   * never a fallback; past the start deadline the shard fails with it.
   */
  private async waiting(pod: PodState, c: Extract<PodCondition, { kind: 'starting' | 'blocked' }>): Promise<ReconcileResult | void> {
    const e = this.entry;
    let claimHolds = false;
    if (c.kind === 'blocked') {
      // The scheduler names volumes when a claim holds the pod (unbound, not found, provisioning failed).
      claimHolds = c.reason === 'Unschedulable' && /persistentvolumeclaim|volume/i.test(c.message);
      const message = `coordinator pod ${pod.name}: ${c.message}${claimHolds ? await this.resultsClaimProblem() : ''}`.slice(0, 4096);
      if (e.reason !== c.reason || e.message !== message) this.event('Warning', c.reason, message);
      this.state(c.reason, message);
    } else if (pod.node || (e.reason !== 'PodCreated' && e.reason !== MOVED_REASON)) {
      // Not yet bound to a node: still what status says (created). One status
      // write less per Swarm in a burst (1000 Swarms: 1000 writes).
      this.state('PodStarting', `coordinator pod ${pod.name} is starting${pod.node ? ` on ${pod.node}` : ''}: ${c.message}`);
    }
    if (this.startDeadlinePassed(pod.createdAt)) {
      this.deletePod(pod.name);
      this.fail(
        'StartDeadlineExceeded',
        `coordinator pod ${pod.name} did not start within ${this.ctx.swarm.spec.coordination.startDeadlineSeconds}s: ${c.reason}: ${c.message}`,
      );
      return;
    }
    const untilDeadline = pod.createdAt + this.ctx.swarm.spec.coordination.startDeadlineSeconds * 1000 - this.ctx.now.getTime() + 50;
    // The claim's news (the PV controller's event, a provisioner's error) comes without a pod change.
    return { requeueAfterMs: claimHolds ? Math.min(untilDeadline, CLAIM_PROBLEM_POLL_MS) : untilDeadline };
  }

  private stuck(c: PodCondition): boolean {
    return c.kind === 'terminating' && c.until !== undefined && this.ctx.now.getTime() > c.until + STUCK_TERMINATING_MS;
  }

  private startDeadlinePassed(since: number): boolean {
    return this.ctx.now.getTime() - since >= this.ctx.swarm.spec.coordination.startDeadlineSeconds * 1000;
  }

  /** The shard's newest coordinator pod; a cache miss is checked against the API server before it counts as lost. */
  private async activePod(): Promise<PodState | undefined> {
    const e = this.entry;
    const attempts = e.attempts ?? 0;
    let newest = this.pods.reduce<PodState | undefined>((a, p) => (!a || p.attempt > a.attempt ? p : a), undefined);
    if (newest && newest.attempt > attempts) {
      // Created by a previous reconcile whose status write did not land: adopt it.
      e.attempts = newest.attempt;
      e.version = newest.version;
    }
    if (!newest || newest.attempt < attempts) {
      if (attempts === 0) return undefined;
      const name = coordinatorPodName(this.ctx.swarm, e.version ?? 'v2', attempts, this.shard);
      try {
        newest = podState(await this.ctx.deps.client.get(resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: this.ctx.ns, name })));
      } catch (err) {
        if (!isNotFound(err)) throw err;
        return undefined;
      }
    }
    return newest;
  }

  /**
   * The shard's results claim, before its pod: created when missing
   * (server-side apply, after the status write). A same-named claim being
   * deleted, or still owned by an earlier Swarm of that name, holds the pod
   * back (reason ResultsClaimPending with why), within the start deadline.
   * False: the pod must wait (status says why).
   */
  private async resultsClaimReady(): Promise<boolean> {
    const { swarm, deps, ns } = this.ctx;
    const claim = resultsClaim(swarm, this.shard);
    if (!claim) return true;
    const path = resourcePath({ group: '', version: 'v1', plural: 'persistentvolumeclaims', namespace: ns, name: claim.metadata.name });
    const existing = await deps.client.get(path).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
      return undefined;
    });
    const verdict = claimVerdict(swarm, existing, this.shard);
    if (verdict.kind === 'create') {
      this.ctx.act(() => deps.client.apply(path, claim, { fieldManager: FIELD_MANAGER, force: true }).then(() => undefined));
      this.event(
        'Normal',
        'ResultsClaimCreated',
        `created results claim ${claim.metadata.name} (${claim.spec.resources.requests.storage}${swarm.spec.results.retain ? ', retained: not deleted with the Swarm' : ''})`,
      );
      return true;
    }
    if (verdict.kind === 'use') {
      if (verdict.kept && (this.entry.attempts ?? 0) === 0) {
        this.event(
          'Normal',
          'ResultsClaimReused',
          `results claim ${claim.metadata.name} exists without this Swarm as its owner (kept by an earlier Swarm or made by someone else): used as it is, not deleted with this Swarm`,
        );
      }
      return true;
    }
    const since = Date.parse(this.entry.attemptTime ?? this.ctx.status.startTime ?? '') || this.ctx.now.getTime();
    if (this.startDeadlinePassed(since)) {
      this.fail('StartDeadlineExceeded', `no coordinator pod within ${swarm.spec.coordination.startDeadlineSeconds}s: ${verdict.message}`);
      return false;
    }
    if (this.entry.reason !== 'ResultsClaimPending') this.event('Warning', 'ResultsClaimPending', verdict.message);
    this.state('ResultsClaimPending', verdict.message);
    if (this.entry.phase !== 'FallingBack') this.entry.phase = 'Pending';
    this.ctx.requeueSoon({ requeueAfterMs: CLAIM_WAIT_POLL_MS });
    return false;
  }

  /**
   * Why the results claim holds an unschedulable pod, in the claim's own
   * words (its phase and latest event: no StorageClass, a provisioning
   * error); empty when it is bound or cannot be read.
   */
  private async resultsClaimProblem(): Promise<string> {
    const name = resultsClaimName(this.ctx.swarm, this.shard);
    if (!name) return '';
    try {
      const at = { group: '', version: 'v1', namespace: this.ctx.ns };
      const [claim, events] = await Promise.all([
        this.ctx.deps.client.get(resourcePath({ ...at, plural: 'persistentvolumeclaims', name })).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
          return undefined;
        }),
        this.ctx.deps.client.get(resourcePath({ ...at, plural: 'events' }), {
          fieldSelector: `involvedObject.kind=PersistentVolumeClaim,involvedObject.name=${name}`,
        }),
      ]);
      const problem = claimProblem(name, claim, events);
      return problem ? `; ${problem}` : '';
    } catch (err) {
      this.ctx.deps.logger.debug(
        { namespace: this.ctx.ns, name: this.ctx.swarm.metadata.name, shard: this.shard, err: errorMessage(err) },
        'reading the results claim failed',
      );
      return '';
    }
  }

  /** Records the shard's next coordinator pod in status; creates it (and its RBAC) after the status write. */
  private async createPod(version: CoordinationVersion, reason: string, sameAttempt = false): Promise<ReconcileResult | void> {
    const e = this.entry;
    if (!(await this.resultsClaimReady())) return;
    const attempt = (e.attempts ?? 0) + (sameAttempt ? 0 : 1);
    const { deps, swarm, now } = this.ctx;
    const pod = coordinatorPod(swarm, version, {
      image: deps.image,
      attempt,
      shard: this.shard,
      now,
      ...(deps.imagePullPolicy ? { imagePullPolicy: deps.imagePullPolicy } : {}),
      ...(this.progress.completedAgents ? { completedAgents: this.progress.completedAgents } : {}),
      ...(this.progress.failedIndexes ? { failedIndexes: this.progress.failedIndexes } : {}),
      ...(deps.coordinatorIdentity === 'shared' ? { serviceAccountName: SHARED_COORDINATOR } : {}),
    });
    this.ctx.act(() => this.createPodNow(pod));
    e.attempts = attempt;
    if (!sameAttempt) e.attemptTime = kubeTime(now);
    e.pod = pod.metadata.name;
    e.node = undefined;
    e.version = version;
    if (e.phase !== 'FallingBack') e.phase = 'Pending';
    // A retry of a refused creation keeps saying so until a pod exists: no
    // status write (and no watch event) per retry, only the requeue paces them.
    if (sameAttempt && e.reason === 'CreateRefused') return { requeueAfterMs: CREATE_REFUSED_RETRY_MS };
    this.state('PodCreated', `coordinator pod ${pod.metadata.name} created`);
    this.event('Normal', reason, `created ${version} coordinator pod ${pod.metadata.name}`);
  }

  /**
   * Creates the pod; a creation the API server refuses for good reasons of its
   * own (quota: 403, admission or validation: 422) is reported as such
   * (reason CreateRefused with its message, a Warning event) and tried again
   * later, within the start deadline.
   */
  private async createPodNow(pod: ReturnType<typeof coordinatorPod>): Promise<void> {
    try {
      await this.createPodOnce(pod);
    } catch (err) {
      if (!(err instanceof KubeApiError) || (err.status !== 403 && err.status !== 422) || err.apiCause === 'NamespaceTerminating') throw err;
      const message = `creating coordinator pod ${pod.metadata.name} refused: ${err.message}`.slice(0, 4096);
      this.state('CreateRefused', message);
      await this.ctx.writeNow();
      this.event('Warning', 'CreateRefused', message);
      this.ctx.requeueSoon({ requeueAfterMs: CREATE_REFUSED_RETRY_MS });
    }
  }

  private async createPodOnce(pod: ReturnType<typeof coordinatorPod>): Promise<void> {
    const { deps, ns, shared, swarm } = this.ctx;
    const createPod = () =>
      deps.client.create(resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: ns }), pod, FIELD_MANAGER).then(
        () => undefined,
        (err: unknown) => {
          if (!isAlreadyExists(err)) throw err;
        },
      );
    if (deps.coordinatorIdentity === 'shared') {
      // One round trip once the namespace's identity exists (cached).
      await shared.ensure(ns);
      await createPod().catch(async (err: unknown) => {
        // Its ServiceAccount deleted since we ensured it: ensure again, once.
        if (!/serviceaccount/i.test(errorMessage(err))) throw err;
        shared.forget(ns);
        await shared.ensure(ns);
        await createPod();
      });
      return;
    }
    // Per-swarm identity, once per reconcile: two round trips, the first pod beside the RoleBinding.
    const made = this.ctx.identity();
    if (made) {
      await made;
      await createPod();
      return;
    }
    await this.ctx.identity(ensureIdentity(deps.client, ns, coordinatorRbac(swarm), createPod));
  }

  /** V2's own failure falls back; a V1 coordinator that fails is replaced (bounded). */
  private async ownFailure(pod: PodState, reason: string, category: FallbackCategory): Promise<ReconcileResult | void> {
    if (pod.version !== 'v2' || this.entry.version !== 'v2') return this.replace(reason, pod);
    return this.fallback(reason, category, pod);
  }

  /**
   * Records the shard's fallback (its entry, and the swarm's fallback,
   * condition, event and metric naming the shard, so a RolloutPolicy sees it),
   * then stops the V2 pod; the V1 pod follows once it is gone (switchToV1).
   */
  private async fallback(reason: string, category: FallbackCategory, pod: PodState): Promise<ReconcileResult | void> {
    const s = this.ctx.status;
    if (!this.ctx.swarm.spec.coordination.fallbackEnabled) {
      this.deletePod(pod.name, !pod.ended);
      this.fail('V2Unavailable', `V2 unavailable (${reason}) and fallback is disabled`);
      return;
    }
    const time = kubeTime(this.ctx.now);
    this.entry.fallback = { from: 'v2', to: 'v1', reason: reason.slice(0, 4096), time };
    const record = { from: 'v2' as const, to: 'v1' as const, reason: `${this.named}${reason}`.slice(0, 4096), time };
    s.fallback = record;
    s.fallbackHistory = [...(s.fallbackHistory ?? []), record].slice(-10);
    this.entry.phase = 'FallingBack';
    this.ctx.setCondition('FallbackActive', 'True', 'V2Unavailable', record.reason);
    this.event('Warning', 'FallbackToV1', `V2 unavailable (${reason}), using V1 fallback`);
    this.ctx.count(() => this.ctx.deps.metrics?.swarmFallbackTotal.inc({ reason: category }));
    this.ctx.deps.logger.warn({ namespace: this.ctx.ns, name: this.ctx.swarm.metadata.name, shard: this.shard, reason }, 'V2 unavailable, falling back to V1');
    return this.switchToV1(pod);
  }

  /**
   * The V1 pod starts only once the V2 pod has terminated or is gone: no
   * agent runs under both. A V2 pod still running is deleted gracefully (its
   * coordinator publishes what it delivered and which agents it interrupted)
   * and waited for. The V1 coordinator resumes past the status the V2
   * coordinator wrote last: this run's status write carries the
   * resourceVersion it read as a precondition, so a later write of the V2
   * coordinator fails it (409) and the reconcile runs again on fresh status.
   */
  private async switchToV1(pod: PodState | undefined): Promise<ReconcileResult | void> {
    if (pod && pod.version === 'v2' && !pod.ended && !this.stuck(pod.condition)) {
      if (pod.condition.kind !== 'terminating') this.deletePod(pod.name, true);
      this.state('StoppingV2', `stopping V2 coordinator pod ${pod.name}; V1 starts once it is gone`);
      return { requeueAfterMs: STOPPING_POLL_MS };
    }
    if (pod) this.deletePod(pod.name);
    return this.createPod('v1', 'CoordinatorCreated');
  }

  /**
   * A coordinator lost from outside (deleted, evicted, preempted, its node
   * lost) or a V1 coordinator that failed: replaced by the same version,
   * resuming past the shard's delivered agents, up to MAX_COORDINATOR_ATTEMPTS.
   */
  private async replace(reason: string, pod?: PodState): Promise<ReconcileResult | void> {
    const e = this.entry;
    if (pod) this.deletePod(pod.name);
    if ((e.attempts ?? 0) >= MAX_COORDINATOR_ATTEMPTS) {
      this.fail('CoordinatorLost', `coordinator lost ${e.attempts} times, last: ${reason}`);
      return;
    }
    const resumes = this.progress.completedAgents || this.progress.failedIndexes;
    const from = pod?.node ? ` (on node ${pod.node})` : '';
    this.event(
      'Warning',
      'CoordinatorLost',
      `${reason}${from}; starting a replacement that resumes ${resumes ? 'past the agents whose final answer is in' : 'from the start'}`,
    );
    const result = await this.createPod(e.version ?? 'v1', 'CoordinatorReplaced');
    // The entry says why the shard moved until its new pod runs (the event keeps it after).
    if (e.reason === 'PodCreated') this.state(MOVED_REASON, `${reason}${from}; replaced by coordinator pod ${e.pod ?? ''}`);
    return result;
  }

  /**
   * Deletes a coordinator pod after the status write: gracefully when it may
   * still run (its coordinator then publishes its final progress), at once otherwise.
   */
  private deletePod(name: string, graceful = false): void {
    const { deps, ns } = this.ctx;
    this.ctx.act(() =>
      deps.client.delete(resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: ns, name }), graceful ? {} : { gracePeriodSeconds: 0 }).then(
        () => undefined,
        (err: unknown) => {
          if (!isNotFound(err)) throw err;
        },
      ),
    );
  }

  /**
   * The shard's coordinator finished: Succeeded when its run completed (the
   * swarm judges the delivery over all shards), Failed with the run's own
   * reason otherwise (invalid tasks, results not stored, its deadline).
   */
  private complete(): void {
    const result = this.progress.result;
    if (!result || result.status === 'completed') {
      this.entry.phase = 'Succeeded';
      this.state('PodSucceeded', 'coordinator finished');
      return;
    }
    const reason =
      result.status === 'timeout'
        ? 'DeadlineExceeded'
        : result.message?.startsWith(INVALID_TASKS_PREFIX)
          ? 'InvalidTasks'
          : isNotStoredMessage(result.message)
            ? 'ResultsNotStored'
            : 'RunFailed';
    this.fail(reason, result.message ?? `coordinator ended with ${result.status}`);
  }

  private fail(reason: string, message: string): void {
    this.entry.phase = 'Failed';
    this.state(reason, message);
    this.event('Warning', reason, message);
  }
}
