// The Swarm reconcile loop: decide the version once, run the coordinator pod,
// report a pod that waits (scheduling, image, quota) as exactly that, fall back
// from V2 to V1 only when V2 itself failed (the V1 pod starts once the V2 pod is
// gone), replace a coordinator lost from outside with the same version (the
// replacement resumes past status.completedAgents and status.failedIndexes),
// finish (judged by spec.successPolicy), clean up.
import { GROUP_VERSION, kubeTime, SWARM_RESOURCE as SWARMS } from '../api/common.js';
import { findCondition, setCondition } from '../api/conditions.js';
import { applyKstatus, swarmKstatus } from '../api/kstatus-conditions.js';
import { deliveryFigures, meetsMinDelivery } from '../coordination/delivery.js';
import { swarm as swarmSchema, swarmAgents } from '../api/swarm.js';
import { INVALID_TASKS_PREFIX } from './swarm-tasks.js';
import { isNotStoredMessage } from '../results/result-writer.js';
import { resourcePath } from '../k8s/client.js';
import { errorMessage, isAlreadyExists, isConflict, isNotFound, isRetryable, KubeApiError, PermanentError } from '../k8s/errors.js';
import { coordinatorPod, coordinatorPodName, LABEL_SWARM } from './coordinator-pod.js';
import { coordinatorRbac, SHARED_COORDINATOR, sharedCoordinatorRbac } from './coordinator-rbac.js';
import { podState } from './pod-state.js';
import { claimProblem, claimVerdict, resultsClaim, resultsClaimName } from './results-claim.js';
import { decideSwarmVersion, resolveSwarmTopology } from '../coordination/version/decide-version.js';
import type { Swarm, SwarmStatusT } from '../api/swarm.js';
import type { ReconcileResult } from '../controller/controller.js';
import type { CoordinationVersion } from '../coordination/types.js';
import type { KubeClient, KubeObject } from '../k8s/client.js';
import type { EventRecorder, EventType } from '../k8s/events.js';
import type { OperatorMetrics } from '../observability/metrics.js';
import type { CoordinatorIdentity } from './coordinator-rbac.js';
import type { PodCondition, PodState } from './pod-state.js';
import type { VersionPolicy } from '../coordination/version/decide-version.js';
import type { Logger } from 'pino';

export const FIELD_MANAGER = 'swarm-operator';
export const FINALIZER = 'swarm.cfn.dev/cleanup';
/** Replacements of a lost coordinator before the swarm is declared Failed. */
export const MAX_COORDINATOR_ATTEMPTS = 5;

/** Status fields the operator owns; the coordinator owns the rest (see api/swarm.ts). */
const OPERATOR_FIELDS = [
  'phase',
  'observedGeneration',
  'version',
  'versionReason',
  'rollout',
  'activeVersion',
  'topology',
  'fallback',
  'fallbackHistory',
  'coordinatorPod',
  'coordinatorAttempts',
  'coordinatorAttemptTime',
  'startTime',
  'completionTime',
  'lastError',
  'conditions',
] as const satisfies readonly (keyof SwarmStatusT)[];

export interface SwarmReconcilerDeps {
  client: KubeClient;
  /** Cached reads (informers); the API server is asked when the cache may lag. */
  getSwarm: (key: string) => KubeObject | undefined;
  listPods: (namespace: string, swarmName: string) => KubeObject[];
  recorder: EventRecorder;
  logger: Logger;
  metrics?: OperatorMetrics;
  /** Told about every Swarm this reconciler writes (to refresh the cache). */
  wrote?: (obj: KubeObject) => void;
  image: string;
  imagePullPolicy?: 'IfNotPresent' | 'Always' | 'Never';
  versionPolicy: VersionPolicy;
  /** How coordinator pods get their least-privilege identity (coordinator-rbac.ts); default per-swarm. */
  coordinatorIdentity?: CoordinatorIdentity;
  now?: () => Date;
}

/** The shared identity is re-ensured this often per namespace (someone may have deleted it). */
const SHARED_IDENTITY_TTL_MS = 5 * 60_000;


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
/** How often to look again while a coordinator pod is being stopped. */
const STOPPING_POLL_MS = 1000;
/**
 * A pod still there this long after its deletionTimestamp has no kubelet to
 * stop it (its node is unreachable): waiting longer would hold the swarm
 * forever, so its successor starts and the pod is force-deleted.
 */
export const STUCK_TERMINATING_MS = 60_000;

/**
 * Creates an RBAC object, the cheap request for the API server (server-side
 * apply costs it a managed-fields merge); one that exists is converged by a
 * merge patch. Not by apply: a merge patch replaces lists whole, so the
 * controller reference of a same-named Swarm deleted before (whose garbage
 * was not collected yet) is replaced; apply kept both controller references,
 * which the API server refuses (422), and the pod never came.
 */
async function ensureObject(client: KubeClient, namespace: string, plural: string, obj: { metadata: { name: string } }, group = 'rbac.authorization.k8s.io'): Promise<void> {
  const at = { group, version: 'v1', plural, namespace };
  await client.create(resourcePath(at), obj, FIELD_MANAGER).catch(async (e: unknown) => {
    if (!isAlreadyExists(e)) throw e;
    await client.mergePatch(resourcePath({ ...at, name: obj.metadata.name }), obj, FIELD_MANAGER);
  });
}

type Named = { metadata: { name: string } };

/**
 * A ServiceAccount with its Role, then its RoleBinding: the pod's admission
 * needs its ServiceAccount, and the RoleBinding needs its Role (without the
 * `bind` verb the API server's escalation check reads the Role, and a binding
 * racing it fails with 404: then the pod runs unbound, 403, lost, V1; found
 * by the e2e suite with the operator under the chart's ServiceAccount).
 */
async function ensureIdentity(client: KubeClient, namespace: string, rbac: { serviceAccount: Named; role: Named; roleBinding: Named }, besideBinding?: () => Promise<void>): Promise<void> {
  await Promise.all([ensureObject(client, namespace, 'serviceaccounts', rbac.serviceAccount, ''), ensureObject(client, namespace, 'roles', rbac.role)]);
  await Promise.all([ensureObject(client, namespace, 'rolebindings', rbac.roleBinding), besideBinding?.()]);
}

/** The shared coordinator identity of each namespace, ensured once per TTL (concurrent reconciles share the request). */
class SharedIdentities {
  private readonly ensured = new Map<string, { at: number; done: Promise<void> }>();
  constructor(private readonly client: KubeClient) {}

  ensure(namespace: string, now = Date.now()): Promise<void> {
    const hit = this.ensured.get(namespace);
    if (hit && now - hit.at < SHARED_IDENTITY_TTL_MS) return hit.done;
    const done = ensureIdentity(this.client, namespace, sharedCoordinatorRbac(namespace));
    this.ensured.set(namespace, { at: now, done });
    // A failed ensure is retried by the next reconcile (not if a newer one replaced it meanwhile).
    done.catch(() => {
      if (this.ensured.get(namespace)?.done === done) this.ensured.delete(namespace);
    });
    return done;
  }

  forget(namespace: string): void {
    this.ensured.delete(namespace);
  }
}

export class SwarmReconciler {
  private readonly shared: SharedIdentities;
  constructor(private readonly deps: SwarmReconcilerDeps) {
    this.shared = new SharedIdentities(deps.client);
  }

  reconcile = async (key: string): Promise<ReconcileResult | void> => {
    const raw = this.deps.getSwarm(key);
    if (!raw) return;
    const parsed = swarmSchema.safeParse(raw);
    if (!parsed.success) {
      throw new PermanentError(`${key}: invalid Swarm: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    const swarm = parsed.data;
    if (swarm.metadata.deletionTimestamp) return this.finalize(swarm);
    try {
      return await new SwarmRun(this.deps, swarm, this.shared, !swarm.metadata.finalizers?.includes(FINALIZER)).reconcile();
    } catch (err) {
      await this.recordError(swarm, err);
      throw err;
    }
  };

  private path(swarm: Swarm, subresource?: string): string {
    return resourcePath({ ...SWARMS, namespace: swarm.metadata.namespace ?? 'default', name: swarm.metadata.name, ...(subresource ? { subresource } : {}) });
  }

  private async finalize(swarm: Swarm): Promise<void> {
    if (!swarm.metadata.finalizers?.includes(FINALIZER)) return;
    const ns = swarm.metadata.namespace ?? 'default';
    // Pods go first and at once (owner references would also collect them, later).
    for (const pod of this.deps.listPods(ns, swarm.metadata.name)) {
      const name = pod.metadata?.name;
      if (!name) continue;
      await this.deps.client.delete(resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: ns, name }), { gracePeriodSeconds: 5 }).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
    }
    await this.deps.recorder.record(involved(swarm), 'Normal', 'Cleanup', 'coordinator pods deleted, finalizer removed');
    await this.deps.client.mergePatch(this.path(swarm), {
      metadata: { finalizers: (swarm.metadata.finalizers ?? []).filter((f) => f !== FINALIZER), resourceVersion: swarm.metadata.resourceVersion },
    });
  }

  /**
   * The last error stays visible in status (condition Reconciled=False) until
   * a reconcile succeeds. It is written onto the live object, read now, with
   * its resourceVersion as a precondition: the cached copy may be older than
   * this reconcile's own writes or the coordinator's, and applying a status
   * built from it would put older operator fields back.
   */
  private async recordError(swarm: Swarm, err: unknown): Promise<void> {
    // A conflict is optimistic concurrency at work: the retry reads the new
    // object, and the conflict says nothing about the swarm's health.
    if (isConflict(err)) return;
    const live = await this.deps.client.get(this.path(swarm)).then((o) => swarmSchema.safeParse(o), () => undefined);
    if (!live?.success) return;
    const current = live.data;
    const status: SwarmStatusT = { ...(current.status ?? {}) };
    status.lastError = errorMessage(err).slice(0, 4096);
    status.conditions = setCondition(status.conditions, { type: 'Reconciled', status: 'False', reason: isRetryable(err) ? 'RetryLater' : 'PermanentError', message: status.lastError }, current.metadata.generation);
    status.conditions = applyKstatus(status.conditions, swarmKstatus(status), current.metadata.generation, this.deps.now?.() ?? new Date());
    // A write racing this one wins; the retry records the error again if it persists.
    await applyOperatorStatus(this.deps.client, current, status).then(this.deps.wrote, () => undefined);
  }
}

export function involved(swarm: Swarm) {
  return { apiVersion: GROUP_VERSION, kind: 'Swarm', name: swarm.metadata.name, namespace: swarm.metadata.namespace ?? 'default', ...(swarm.metadata.uid ? { uid: swarm.metadata.uid } : {}) };
}

/** Server-side apply of the operator's status fields, with the resourceVersion read as a precondition. */
async function applyOperatorStatus(client: KubeClient, swarm: Swarm, status: SwarmStatusT, precondition = true): Promise<KubeObject> {
  const owned: Record<string, unknown> = {};
  for (const f of OPERATOR_FIELDS) if (status[f] !== undefined) owned[f] = status[f];
  return client.apply(
    resourcePath({ ...SWARMS, namespace: swarm.metadata.namespace ?? 'default', name: swarm.metadata.name }),
    {
      apiVersion: GROUP_VERSION,
      kind: 'Swarm',
      metadata: { name: swarm.metadata.name, namespace: swarm.metadata.namespace, ...(precondition ? { resourceVersion: swarm.metadata.resourceVersion } : {}) },
      status: owned,
    },
    { fieldManager: FIELD_MANAGER, force: true, subresource: 'status' },
  );
}

/**
 * One reconcile of one swarm: computes the next status, writes it (with the
 * resourceVersion read as a precondition), and only then acts on it. Intent
 * first: a reconcile working from a stale cache fails its write with a 409
 * before it creates or deletes anything.
 */
class SwarmRun {
  private readonly status: SwarmStatusT;
  private readonly events: Array<[EventType, string, string]> = [];
  private readonly actions: Array<() => Promise<void>> = [];
  /**
   * Metric updates of this run's decisions, made once its status write landed:
   * a write that fails (a 409 from a stale cache) is retried, and the retry
   * decides the same again; counted before the write, it was counted twice.
   */
  private readonly counted: Array<() => void> = [];
  private readonly now: Date;
  private readonly ns: string;
  /** Set by an action that needs the swarm looked at again sooner than the step said. */
  private requeue: ReconcileResult | undefined;

  constructor(
    private readonly deps: SwarmReconcilerDeps,
    private readonly swarm: Swarm,
    private readonly shared: SharedIdentities,
    private readonly needsFinalizer = false,
  ) {
    this.status = structuredClone(swarm.status ?? {});
    this.now = deps.now?.() ?? new Date();
    this.ns = swarm.metadata.namespace ?? 'default';
  }

  async reconcile(): Promise<ReconcileResult | void> {
    const before = JSON.stringify(this.status);
    const result = await this.step();
    this.resultsStored();
    this.status.observedGeneration = this.swarm.metadata.generation;
    this.status.lastError = undefined;
    this.setCondition('Reconciled', 'True', 'Reconciled', 'the operator acted on the latest spec');
    this.status.conditions = applyKstatus(this.status.conditions, swarmKstatus(this.status), this.swarm.metadata.generation, this.now);
    let rv = this.swarm.metadata.resourceVersion;
    if (JSON.stringify(this.status) !== before) {
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

  /** The whole finalizers list with ours added, precondition the resourceVersion we last wrote or read (never drops another's). */
  private async addFinalizer(resourceVersion: string | undefined): Promise<void> {
    const patched = await this.deps.client.mergePatch(resourcePath({ ...SWARMS, namespace: this.ns, name: this.swarm.metadata.name }), {
      metadata: { finalizers: [...(this.swarm.metadata.finalizers ?? []), FINALIZER], resourceVersion },
    });
    this.deps.wrote?.(patched);
  }

  private async step(): Promise<ReconcileResult | void> {
    const s = this.status;
    if (!s.version) {
      const d = decideSwarmVersion(this.swarm, this.deps.versionPolicy);
      s.version = d.version;
      s.versionReason = d.reason;
      if (d.rollout) {
        s.rollout = { ...d.rollout, time: this.now.toISOString() };
        const routed = { policy: `${this.ns}/${d.rollout.policy}`, version: d.version };
        this.counted.push(() => this.deps.metrics?.rolloutRoutedTotal.inc(routed));
      }
      s.activeVersion = d.version;
      s.phase = 'Pending';
      s.startTime = kubeTime(this.now);
      s.coordinatorAttempts = 0;
      this.event('Normal', 'VersionSelected', `coordination ${d.version}: ${d.reason}`);
      this.deps.logger.info({ namespace: this.ns, name: this.swarm.metadata.name, version: d.version, reason: d.reason }, 'version selected');
    }
    s.topology ??= resolveSwarmTopology(this.swarm);
    s.activeVersion ??= s.version;
    if (s.phase === 'Succeeded' || s.phase === 'Failed') return this.finished();

    const pod = await this.activePod();
    // A fallback was decided: V1 starts once the V2 pod is gone or terminated.
    if (s.phase === 'FallingBack' && s.activeVersion === 'v2') return this.switchToV1(pod);
    if (!pod) {
      if ((s.coordinatorAttempts ?? 0) === 0) return this.createPod(s.activeVersion, 'CoordinatorCreated');
      // Recorded but never seen: the creation after the status write did not
      // happen (an error, a crash) or was refused (quota, admission). Create
      // the same attempt again, within the start deadline.
      const last = findCondition(s.conditions, 'CoordinatorReady')?.reason;
      // Held back by its results claim: no attempt was recorded for it.
      if (last === 'ResultsClaimPending') return this.createPod(s.activeVersion, 'CoordinatorCreated');
      if (last === 'PodCreated' || last === 'CreateRefused') {
        const since = Date.parse(s.coordinatorAttemptTime ?? s.startTime ?? '') || this.now.getTime();
        if (last === 'CreateRefused' && this.startDeadlinePassed(since)) {
          this.fail('StartDeadlineExceeded', `no coordinator pod within ${this.swarm.spec.coordination.startDeadlineSeconds}s: ${findCondition(s.conditions, 'CoordinatorReady')?.message ?? 'creation refused'}`);
          return;
        }
        return this.createPod(s.activeVersion, 'CoordinatorCreated', true);
      }
      return this.replace(`coordinator pod ${s.coordinatorPod ?? ''} is gone`.replace('  ', ' '));
    }
    s.coordinatorPod = pod.name;
    const c = pod.condition;
    switch (c.kind) {
      case 'succeeded':
        return this.complete();
      case 'preflight-failed':
        return this.ownFailure(pod, c.reason, 'preflight');
      case 'crashed':
        return this.ownFailure(pod, `${pod.version === 'v2' ? 'V2 ' : ''}coordinator failed: ${c.reason}`, /OOMKilled/.test(c.reason) ? 'oom_killed' : 'crashed');
      case 'lost':
        return this.replace(c.reason, pod);
      case 'terminating':
        if (this.stuck(c)) return this.replace(`coordinator pod ${pod.name} still terminating ${STUCK_TERMINATING_MS / 1000}s past its deletion deadline (node unreachable?)`, pod);
        // Not being deleted: its container ended well, the phase follows.
        if (c.until === undefined) return { requeueAfterMs: STOPPING_POLL_MS };
        // Its successor must not run beside it: wait until it is gone.
        this.setCondition('CoordinatorReady', 'False', 'PodTerminating', `coordinator pod ${pod.name}: ${c.reason}, waiting for it to stop`);
        return { requeueAfterMs: STOPPING_POLL_MS };
      case 'ready':
        this.setCondition('CoordinatorReady', 'True', 'PodReady', `coordinator pod ${pod.name} is ready`);
        s.phase = 'Running';
        return;
      case 'running': {
        // Ready once already: NotReady now (a probe timing out on a loaded node,
        // health.json removed as the run ends) is no startup failure; a dead pod
        // shows as crashed, lost or succeeded. Found by the e2e suite on a real kubelet.
        if (s.phase === 'Running') return;
        // Progress published by this very pod: it passed preflight and runs,
        // though a short run can end before its first readiness probe passes
        // (health.json is removed as the run ends). Not a startup timeout.
        if (this.swarm.status?.progressPod === pod.name) {
          const agents = this.swarm.status.agents;
          const done = agents ? ` (${agents.completed + agents.failed}/${agents.total} agents done)` : '';
          this.setCondition('CoordinatorReady', 'True', 'Progressing', `coordinator pod ${pod.name} publishes progress${done}`);
          s.phase = 'Running';
          return;
        }
        this.setCondition('CoordinatorReady', 'False', 'PodStarting', `coordinator pod ${pod.name} runs${pod.node ? ` on ${pod.node}` : ''}, not ready yet`);
        if (pod.version !== 'v2') return;
        // The clock starts when the container runs: time spent waiting for a
        // node, an image or a volume is not V2's to answer for.
        const limitS = this.swarm.spec.coordination.fallbackTimeoutSeconds;
        const waited = this.now.getTime() - c.startedAt;
        if (waited >= limitS * 1000) return this.ownFailure(pod, `V2 coordinator not ready within ${limitS}s of its container starting`, 'startup_timeout');
        return { requeueAfterMs: limitS * 1000 - waited + 50 };
      }
      case 'starting':
      case 'blocked':
        return this.waiting(pod, c);
    }
  }

  /**
   * A pod that does not run yet: reported as what it waits for (the
   * scheduler's or kubelet's own words, a Warning event when that changes),
   * never a fallback; past the start deadline the swarm fails with it.
   */
  private async waiting(pod: PodState, c: Extract<PodCondition, { kind: 'starting' | 'blocked' }>): Promise<ReconcileResult | void> {
    const s = this.status;
    const previous = findCondition(s.conditions, 'CoordinatorReady');
    if (c.kind === 'blocked') {
      // The scheduler names volumes when a claim holds the pod (unbound, not found, provisioning failed).
      const claimHolds = c.reason === 'Unschedulable' && /persistentvolumeclaim|volume/i.test(c.message);
      const message = `coordinator pod ${pod.name}: ${c.message}${claimHolds ? await this.resultsClaimProblem() : ''}`.slice(0, 4096);
      if (previous?.reason !== c.reason || previous.message !== message) this.event('Warning', c.reason, message);
      this.setCondition('CoordinatorReady', 'False', c.reason, message);
    } else if (pod.node || previous?.reason !== 'PodCreated') {
      // Not yet bound to a node: still what status says (created). One status
      // write less per Swarm in a burst (1000 Swarms: 1000 writes).
      this.setCondition('CoordinatorReady', 'False', 'PodStarting', `coordinator pod ${pod.name} is starting${pod.node ? ` on ${pod.node}` : ''}: ${c.message}`);
    }
    if (this.startDeadlinePassed(pod.createdAt)) {
      this.deletePod(pod.name);
      this.fail('StartDeadlineExceeded', `coordinator pod ${pod.name} did not start within ${this.swarm.spec.coordination.startDeadlineSeconds}s: ${c.reason}: ${c.message}`);
      return;
    }
    return { requeueAfterMs: pod.createdAt + this.swarm.spec.coordination.startDeadlineSeconds * 1000 - this.now.getTime() + 50 };
  }

  private stuck(c: PodCondition): boolean {
    return c.kind === 'terminating' && c.until !== undefined && this.now.getTime() > c.until + STUCK_TERMINATING_MS;
  }

  private startDeadlinePassed(since: number): boolean {
    return this.now.getTime() - since >= this.swarm.spec.coordination.startDeadlineSeconds * 1000;
  }

  /** The newest coordinator pod; a cache miss is checked against the API server before it counts as lost. */
  private async activePod(): Promise<PodState | undefined> {
    const pods = this.deps.listPods(this.ns, this.swarm.metadata.name).map(podState).filter((p): p is PodState => p !== undefined);
    const attempts = this.status.coordinatorAttempts ?? 0;
    let newest = pods.reduce<PodState | undefined>((a, p) => (!a || p.attempt > a.attempt ? p : a), undefined);
    if (newest && newest.attempt > attempts) {
      // Created by a previous reconcile whose status write did not land: adopt it.
      this.status.coordinatorAttempts = newest.attempt;
      this.status.activeVersion = newest.version;
    }
    if (!newest || newest.attempt < attempts) {
      if (attempts === 0) return undefined;
      const name = coordinatorPodName(this.swarm, this.status.activeVersion ?? 'v2', attempts);
      try {
        newest = podState(await this.deps.client.get(resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: this.ns, name })));
      } catch (e) {
        if (!isNotFound(e)) throw e;
        return undefined;
      }
    }
    return newest;
  }

  /**
   * The results claim the pod mounts, before the pod: created when missing
   * (server-side apply, after the status write). A same-named claim being
   * deleted, or still owned by an earlier Swarm of that name, holds the pod
   * back (CoordinatorReady=False ResultsClaimPending with why), within the
   * start deadline. False: the pod must wait (status says why).
   */
  private async resultsClaimReady(): Promise<boolean> {
    const claim = resultsClaim(this.swarm);
    if (!claim) return true;
    const path = resourcePath({ group: '', version: 'v1', plural: 'persistentvolumeclaims', namespace: this.ns, name: claim.metadata.name });
    const existing = await this.deps.client.get(path).catch((e: unknown) => {
      if (!isNotFound(e)) throw e;
      return undefined;
    });
    const verdict = claimVerdict(this.swarm, existing);
    if (verdict.kind === 'create') {
      this.actions.push(() => this.deps.client.apply(path, claim, { fieldManager: FIELD_MANAGER, force: true }).then(() => undefined));
      this.event('Normal', 'ResultsClaimCreated', `created results claim ${claim.metadata.name} (${claim.spec.resources.requests.storage}${this.swarm.spec.results.retain ? ', retained: not deleted with the Swarm' : ''})`);
      return true;
    }
    if (verdict.kind === 'use') {
      if (verdict.kept && (this.status.coordinatorAttempts ?? 0) === 0) {
        this.event('Normal', 'ResultsClaimReused', `results claim ${claim.metadata.name} exists without this Swarm as its owner (kept by an earlier Swarm or made by someone else): used as it is, not deleted with this Swarm`);
      }
      return true;
    }
    const since = Date.parse(this.status.coordinatorAttemptTime ?? this.status.startTime ?? '') || this.now.getTime();
    if (this.startDeadlinePassed(since)) {
      this.fail('StartDeadlineExceeded', `no coordinator pod within ${this.swarm.spec.coordination.startDeadlineSeconds}s: ${verdict.message}`);
      return false;
    }
    if (findCondition(this.status.conditions, 'CoordinatorReady')?.reason !== 'ResultsClaimPending') this.event('Warning', 'ResultsClaimPending', verdict.message);
    this.setCondition('CoordinatorReady', 'False', 'ResultsClaimPending', verdict.message);
    if (this.status.phase !== 'FallingBack') this.status.phase = 'Pending';
    this.requeue = { requeueAfterMs: CLAIM_WAIT_POLL_MS };
    return false;
  }

  /**
   * Why the results claim holds an unschedulable pod, in the claim's own
   * words (its phase and latest event: no StorageClass, a provisioning
   * error); empty when it is bound or cannot be read.
   */
  private async resultsClaimProblem(): Promise<string> {
    const name = resultsClaimName(this.swarm);
    if (!name) return '';
    try {
      const at = { group: '', version: 'v1', namespace: this.ns };
      const [claim, events] = await Promise.all([
        this.deps.client.get(resourcePath({ ...at, plural: 'persistentvolumeclaims', name })).catch((e: unknown) => {
          if (!isNotFound(e)) throw e;
          return undefined;
        }),
        this.deps.client.get(resourcePath({ ...at, plural: 'events' }), { fieldSelector: `involvedObject.kind=PersistentVolumeClaim,involvedObject.name=${name}` }),
      ]);
      const problem = claimProblem(name, claim, events);
      return problem ? `; ${problem}` : '';
    } catch (e) {
      this.deps.logger.debug({ namespace: this.ns, name: this.swarm.metadata.name, err: errorMessage(e) }, 'reading the results claim failed');
      return '';
    }
  }

  /** Records the next coordinator pod in status; creates it (and its RBAC) after the status write. */
  private async createPod(version: CoordinationVersion, reason: string, sameAttempt = false): Promise<ReconcileResult | void> {
    const s = this.status;
    if (!(await this.resultsClaimReady())) return;
    const attempt = (s.coordinatorAttempts ?? 0) + (sameAttempt ? 0 : 1);
    const pod = coordinatorPod(this.swarm, version, {
      image: this.deps.image,
      attempt,
      now: this.now,
      ...(this.deps.imagePullPolicy ? { imagePullPolicy: this.deps.imagePullPolicy } : {}),
      ...(this.swarm.status?.completedAgents ? { completedAgents: this.swarm.status.completedAgents } : {}),
      ...(this.swarm.status?.failedIndexes ? { failedIndexes: this.swarm.status.failedIndexes } : {}),
      ...(this.deps.coordinatorIdentity === 'shared' ? { serviceAccountName: SHARED_COORDINATOR } : {}),
    });
    this.actions.push(() => this.createPodNow(pod));
    s.coordinatorAttempts = attempt;
    if (!sameAttempt) s.coordinatorAttemptTime = kubeTime(this.now);
    s.coordinatorPod = pod.metadata.name;
    s.activeVersion = version;
    if (s.phase !== 'FallingBack') s.phase = 'Pending';
    // A retry of a refused creation keeps saying so until a pod exists: no
    // status write (and no watch event) per retry, only the requeue paces them.
    if (sameAttempt && findCondition(s.conditions, 'CoordinatorReady')?.reason === 'CreateRefused') return { requeueAfterMs: CREATE_REFUSED_RETRY_MS };
    this.setCondition('CoordinatorReady', 'False', 'PodCreated', `coordinator pod ${pod.metadata.name} created`);
    this.event('Normal', reason, `created ${version} coordinator pod ${pod.metadata.name}`);
  }

  /**
   * Creates the pod; a creation the API server refuses for good reasons of its
   * own (quota: 403, admission or validation: 422) is reported as such
   * (CoordinatorReady=False CreateRefused with its message, a Warning event)
   * and tried again later, within the start deadline.
   */
  private async createPodNow(pod: ReturnType<typeof coordinatorPod>): Promise<void> {
    try {
      await this.createPodOnce(pod);
    } catch (e) {
      if (!(e instanceof KubeApiError) || (e.status !== 403 && e.status !== 422) || e.apiCause === 'NamespaceTerminating') throw e;
      const message = `creating coordinator pod ${pod.metadata.name} refused: ${e.message}`.slice(0, 4096);
      this.setCondition('CoordinatorReady', 'False', 'CreateRefused', message);
      const written = await applyOperatorStatus(this.deps.client, this.swarm, this.status, false);
      this.deps.wrote?.(written);
      this.event('Warning', 'CreateRefused', message);
      this.requeue = { requeueAfterMs: CREATE_REFUSED_RETRY_MS };
    }
  }

  private async createPodOnce(pod: ReturnType<typeof coordinatorPod>): Promise<void> {
    const createPod = () =>
      this.deps.client.create(resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: this.ns }), pod, FIELD_MANAGER).then(
        () => undefined,
        (e: unknown) => {
          if (!isAlreadyExists(e)) throw e;
        },
      );
    if (this.deps.coordinatorIdentity === 'shared') {
      // One round trip once the namespace's identity exists (cached).
      await this.shared.ensure(this.ns);
      await createPod().catch(async (e: unknown) => {
        // Its ServiceAccount deleted since we ensured it: ensure again, once.
        if (!/serviceaccount/i.test(errorMessage(e))) throw e;
        this.shared.forget(this.ns);
        await this.shared.ensure(this.ns);
        await createPod();
      });
      return;
    }
    // Per-swarm identity: two round trips, the pod beside the RoleBinding.
    await ensureIdentity(this.deps.client, this.ns, coordinatorRbac(this.swarm), createPod);
  }

  /** V2's own failure falls back; a V1 coordinator that fails is replaced (bounded). */
  private async ownFailure(pod: PodState, reason: string, category: FallbackCategory): Promise<ReconcileResult | void> {
    if (pod.version !== 'v2' || this.status.activeVersion !== 'v2') return this.replace(reason, pod);
    return this.fallback(reason, category, pod);
  }

  /**
   * Records the fallback (status, condition, event, metric), then stops the
   * V2 pod; the V1 pod follows once it is gone (switchToV1).
   */
  private async fallback(reason: string, category: FallbackCategory, pod: PodState): Promise<ReconcileResult | void> {
    const s = this.status;
    if (!this.swarm.spec.coordination.fallbackEnabled) {
      this.deletePod(pod.name, !pod.ended);
      this.fail('V2Unavailable', `V2 unavailable (${reason}) and fallback is disabled`);
      return;
    }
    const record = { from: 'v2' as const, to: 'v1' as const, reason, time: kubeTime(this.now) };
    s.fallback = record;
    s.fallbackHistory = [...(s.fallbackHistory ?? []), record].slice(-10);
    s.phase = 'FallingBack';
    this.setCondition('FallbackActive', 'True', 'V2Unavailable', reason);
    this.event('Warning', 'FallbackToV1', `V2 unavailable (${reason}), using V1 fallback`);
    this.counted.push(() => this.deps.metrics?.swarmFallbackTotal.inc({ reason: category }));
    this.deps.logger.warn({ namespace: this.ns, name: this.swarm.metadata.name, reason }, 'V2 unavailable, falling back to V1');
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
      this.setCondition('CoordinatorReady', 'False', 'StoppingV2', `stopping V2 coordinator pod ${pod.name}; V1 starts once it is gone`);
      return { requeueAfterMs: STOPPING_POLL_MS };
    }
    if (pod) this.deletePod(pod.name);
    return this.createPod('v1', 'CoordinatorCreated');
  }

  /**
   * A coordinator lost from outside (deleted, evicted, preempted, its node
   * lost) or a V1 coordinator that failed: replaced by the same version,
   * resuming past the delivered agents, up to MAX_COORDINATOR_ATTEMPTS.
   */
  private async replace(reason: string, pod?: PodState): Promise<ReconcileResult | void> {
    const s = this.status;
    if (pod) this.deletePod(pod.name);
    if ((s.coordinatorAttempts ?? 0) >= MAX_COORDINATOR_ATTEMPTS) {
      this.fail('CoordinatorLost', `coordinator lost ${s.coordinatorAttempts} times, last: ${reason}`);
      return;
    }
    const resumes = this.swarm.status?.completedAgents || this.swarm.status?.failedIndexes;
    this.event('Warning', 'CoordinatorLost', `${reason}; starting a replacement that resumes ${resumes ? 'past the agents whose final answer is in' : 'from the start'}`);
    return this.createPod(s.activeVersion ?? 'v1', 'CoordinatorReplaced');
  }

  /**
   * Deletes a coordinator pod after the status write: gracefully when it may
   * still run (its coordinator then publishes its final progress), at once otherwise.
   */
  private deletePod(name: string, graceful = false): void {
    this.actions.push(() =>
      this.deps.client
        .delete(resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: this.ns, name }), graceful ? {} : { gracePeriodSeconds: 0 })
        .then(
          () => undefined,
          (e: unknown) => {
            if (!isNotFound(e)) throw e;
          },
        ),
    );
  }

  /**
   * The coordinator finished: Succeeded (condition Complete) only when the
   * completed agents meet spec.successPolicy.minDeliveryRate, else Failed
   * (DeliveryBelowSuccessPolicy), with the figures. No published progress
   * means no agent is known to have completed.
   */
  private complete(): Promise<ReconcileResult | void> {
    const s = this.status;
    const result = this.swarm.status?.result;
    s.completionTime = kubeTime(this.now);
    this.setCondition('CoordinatorReady', 'False', 'PodSucceeded', 'coordinator finished');
    if (!result || result.status === 'completed') {
      const agents = this.swarm.status?.agents ?? { total: swarmAgents(this.swarm.spec), completed: 0, failed: 0 };
      const min = this.swarm.spec.successPolicy.minDeliveryRate;
      const figures = deliveryFigures(agents);
      if (meetsMinDelivery(agents.completed, agents.total, min)) {
        s.phase = 'Succeeded';
        const msg = `${figures} >= ${min}%`;
        this.setCondition('Complete', 'True', 'Completed', msg);
        this.event('Normal', 'Completed', msg);
      } else {
        this.fail('DeliveryBelowSuccessPolicy', `${figures} < ${min}% (spec.successPolicy.minDeliveryRate)`);
      }
    } else {
      const reason =
        result.status === 'timeout' ? 'DeadlineExceeded' : result.message?.startsWith(INVALID_TASKS_PREFIX) ? 'InvalidTasks' : isNotStoredMessage(result.message) ? 'ResultsNotStored' : 'RunFailed';
      this.fail(reason, result.message ?? `coordinator ended with ${result.status}`);
    }
    const seconds = (this.swarm.status?.coordinationTimeMs ?? 0) / 1000;
    const version = s.activeVersion ?? 'v1';
    this.counted.push(() => this.deps.metrics?.swarmCoordinationSeconds.observe({ version }, seconds));
    return this.finished();
  }

  /**
   * ResultsStored, from the coordinator's status.results: False with the
   * sink's error while storing fails (a full volume, an unreachable store).
   * No counts in the message: progress would then cost a status write per update.
   */
  private resultsStored(): void {
    const r = this.swarm.status?.results;
    if (!r) return;
    if (r.lastError !== undefined) this.setCondition('ResultsStored', 'False', 'StoreFailing', `storing results at ${r.location} fails: ${r.lastError}`);
    else this.setCondition('ResultsStored', 'True', 'Stored', `results are stored at ${r.location}`);
  }

  private fail(reason: string, message: string): void {
    const s = this.status;
    s.phase = 'Failed';
    s.completionTime ??= kubeTime(this.now);
    this.setCondition('Failed', 'True', reason, message);
    this.setCondition('CoordinatorReady', 'False', reason, message);
    this.event('Warning', reason, message);
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

  private setCondition(type: string, status: 'True' | 'False' | 'Unknown', reason: string, message: string): void {
    this.status.conditions = setCondition(this.status.conditions, { type, status, reason, message }, this.swarm.metadata.generation, this.now);
  }

  private event(type: EventType, reason: string, message: string): void {
    this.events.push([type, reason, message]);
  }
}

/** Key of the Swarm a coordinator pod belongs to, from its label. */
export const swarmKeyOfPod = (pod: KubeObject): string | undefined => {
  const labels = pod.metadata?.labels as Record<string, string> | undefined;
  const name = labels?.[LABEL_SWARM];
  return name ? `${pod.metadata?.namespace ?? ''}/${name}` : undefined;
};
