// The Swarm reconcile loop's entry: parse the Swarm, run one reconcile of it
// (swarm-run.ts: version, suspend, one state machine per shard in
// shard-run.ts, one status from them), record an error in status, and clean
// up a deleted Swarm (finalize).
import { LABEL_SWARM, SWARM_RESOURCE as SWARMS } from '../api/common.js';
import { setCondition } from '../api/conditions.js';
import { applyKstatus, swarmKstatus } from '../api/kstatus-conditions.js';
import { swarm as swarmSchema } from '../api/swarm.js';
import { resourcePath } from '../k8s/client.js';
import { errorMessage, isConflict, isNotFound, isRetryable, PermanentError } from '../k8s/errors.js';
import { SharedIdentities } from './swarm-identity.js';
import { SwarmRun } from './swarm-run.js';
import { applyOperatorStatus, FINALIZER, involved } from './swarm-write.js';
import type { Swarm, SwarmResourceStatus } from '../api/swarm.js';
import type { ReconcileResult } from '../controller/controller.js';
import type { KubeObject } from '../k8s/client.js';
import type { SwarmReconcilerDeps } from './reconciler-deps.js';

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
      await this.deps.client
        .delete(resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: ns, name }), { gracePeriodSeconds: 5 })
        .catch((e: unknown) => {
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
    const live = await this.deps.client.get(this.path(swarm)).then(
      (o) => swarmSchema.safeParse(o),
      () => undefined,
    );
    if (!live?.success) return;
    const current = live.data;
    const status: SwarmResourceStatus = { ...(current.status ?? {}) };
    status.lastError = errorMessage(err).slice(0, 4096);
    status.conditions = setCondition(
      status.conditions,
      { type: 'Reconciled', status: 'False', reason: isRetryable(err) ? 'RetryLater' : 'PermanentError', message: status.lastError },
      current.metadata.generation,
    );
    status.conditions = applyKstatus(status.conditions, swarmKstatus(status), current.metadata.generation, this.deps.now?.() ?? new Date());
    // A write racing this one wins; the retry records the error again if it persists.
    await applyOperatorStatus(this.deps.client, current, status).then(this.deps.wrote, () => undefined);
  }
}

/** Key of the Swarm a coordinator pod belongs to, from its label. */
export const swarmKeyOfPod = (pod: KubeObject): string | undefined => {
  const labels = pod.metadata?.labels as Record<string, string> | undefined;
  const name = labels?.[LABEL_SWARM];
  return name ? `${pod.metadata?.namespace ?? ''}/${name}` : undefined;
};
