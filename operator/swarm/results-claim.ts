// The volume a Swarm's results go to. results.type persistentVolumeClaim
// (the default): the claim named by results.claimName (every shard mounts
// it), else <swarm>-results (<swarm>-results-<shard> per shard when the swarm
// has more than one),
// which the operator creates (ReadWriteOnce, results.size, the cluster's
// default StorageClass unless results.storageClassName) owned by the Swarm so
// it goes with it, or without an owner when results.retain keeps it.
// Other types: an emptyDir (s3 keeps nothing on the pod's volume).
import { z } from 'zod';
import { createdClaimName as claimNameOf, resultsClaimName as claimOf } from '../results/sink-factory.js';
import { LABEL_MANAGED_BY, LABEL_SWARM, MANAGED_BY } from '../api/common.js';
import { ownerReference } from './owner-reference.js';
import { swarmShardCount } from './shards.js';
import type { Swarm } from '../api/swarm.js';

export const RESULTS_VOLUME = 'results';
export const DEFAULT_RESULTS_SIZE = '1Gi';
/** The UID of the Swarm a created claim is for: tells it from a same-named claim of an earlier Swarm. */
export const ANNOTATION_CLAIM_FOR = 'swarm.cfn.dev/results-for';

/** The shard argument of the claim names: undefined for a single-shard swarm (its claim has no shard suffix). */
export const claimShard = (swarm: Swarm, shard: number): number | undefined => (swarmShardCount(swarm) > 1 ? shard : undefined);

/** The claim the operator creates for `swarm`'s shard `shard` (when it creates one): <swarm>-results, or <swarm>-results-<shard> when sharded. */
export const createdClaimName = (swarm: Swarm, shard = 0): string => claimNameOf(swarm.metadata.name, claimShard(swarm, shard));

/** The claim shard `shard`'s coordinator pods mount, undefined when the results are not on a claim. */
export function resultsClaimName(swarm: Swarm, shard = 0): string | undefined {
  const r = swarm.spec.results;
  return r.type === 'persistentVolumeClaim' ? claimOf(swarm.metadata.name, r, claimShard(swarm, shard)) : undefined;
}

/** Whether the operator creates (and by default deletes) the claim. */
export const operatorCreatesClaim = (swarm: Swarm): boolean => swarm.spec.results.type === 'persistentVolumeClaim' && !swarm.spec.results.claimName;

/** The pod volume named RESULTS_VOLUME. */
export function resultsVolume(swarm: Swarm, shard = 0): object {
  const claimName = resultsClaimName(swarm, shard);
  return claimName ? { name: RESULTS_VOLUME, persistentVolumeClaim: { claimName } } : { name: RESULTS_VOLUME, emptyDir: {} };
}

/** The claim the operator creates, as a server-side apply body; undefined when it creates none. */
export function resultsClaim(swarm: Swarm, shard = 0) {
  if (!operatorCreatesClaim(swarm)) return undefined;
  const r = swarm.spec.results;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: createdClaimName(swarm, shard),
      namespace: swarm.metadata.namespace ?? 'default',
      labels: { [LABEL_SWARM]: swarm.metadata.name, [LABEL_MANAGED_BY]: MANAGED_BY, 'app.kubernetes.io/name': 'swarm-results' },
      annotations: { [ANNOTATION_CLAIM_FOR]: swarm.metadata.uid ?? '' },
      ...(r.retain ? {} : { ownerReferences: [ownerReference(swarm)] }),
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: String(r.size ?? DEFAULT_RESULTS_SIZE) } },
      ...(r.storageClassName ? { storageClassName: r.storageClassName } : {}),
    },
  };
}

const claimShape = z.looseObject({
  metadata: z.looseObject({
    name: z.string(),
    deletionTimestamp: z.string().optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    ownerReferences: z.array(z.looseObject({ kind: z.string(), name: z.string(), uid: z.string(), controller: z.boolean().optional() })).optional(),
  }),
});

/**
 * What to do about the claim found under the created claim's name:
 * - create: there is none (apply it);
 * - use: it is this Swarm's, or one kept (retain) or made by someone else:
 *   mounted as it is, never adopted (its owner decides when it goes);
 * - wait: it is being deleted, or belongs to an earlier Swarm of the same
 *   name that the garbage collector has yet to remove (message: why).
 */
export type ClaimVerdict = { kind: 'create' } | { kind: 'use'; kept: boolean } | { kind: 'wait'; message: string };

export function claimVerdict(swarm: Swarm, existing: unknown, shard = 0): ClaimVerdict {
  if (existing === undefined) return { kind: 'create' };
  const name = createdClaimName(swarm, shard);
  const parsed = claimShape.safeParse(existing);
  if (!parsed.success) return { kind: 'wait', message: `results claim ${name} is unreadable: ${parsed.error.issues[0]?.message ?? 'invalid'}` };
  const meta = parsed.data.metadata;
  const uid = swarm.metadata.uid ?? '';
  if (meta.deletionTimestamp) return { kind: 'wait', message: `results claim ${name} is being deleted; a new one is created once it is gone` };
  const controller = meta.ownerReferences?.find((o) => o.controller);
  if (controller && controller.uid !== uid) {
    return {
      kind: 'wait',
      message: `results claim ${name} belongs to ${controller.kind} ${controller.name} (uid ${controller.uid}), an earlier object of that name; waiting for the garbage collector to delete it`,
    };
  }
  const ours = controller?.uid === uid || meta.annotations?.[ANNOTATION_CLAIM_FOR] === uid;
  return { kind: 'use', kept: !ours };
}

const claimStatus = z.looseObject({ status: z.looseObject({ phase: z.string().optional() }).optional() });
const eventList = z.looseObject({
  items: z
    .array(
      z.looseObject({
        type: z.string().optional(),
        reason: z.string().optional(),
        message: z.string().optional(),
        lastTimestamp: z.string().nullable().optional(),
        eventTime: z.string().nullable().optional(),
        metadata: z.looseObject({ creationTimestamp: z.string().optional() }).optional(),
      }),
    )
    .optional(),
});

/**
 * Why claim `name` keeps a pod from being scheduled, from the claim (its
 * phase) and its latest event (the PV controller's or the provisioner's:
 * no StorageClass, a class that does not exist, a provisioning error);
 * undefined when it is bound.
 */
export function claimProblem(name: string, claim: unknown, events: unknown): string | undefined {
  if (claim === undefined) return `results claim ${name} does not exist`;
  const phase = claimStatus.safeParse(claim).data?.status?.phase ?? 'Pending';
  if (phase === 'Bound') return undefined;
  const when = (e: {
    lastTimestamp?: string | null | undefined;
    eventTime?: string | null | undefined;
    metadata?: { creationTimestamp?: string | undefined } | undefined;
  }) => Date.parse(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? '') || 0;
  // The latest event, a Warning before a Normal one of the same time (the PV
  // controller reports a claim with no StorageClass as Normal FailedBinding).
  const items = eventList.safeParse(events).data?.items ?? [];
  const rank = (e: (typeof items)[number]) => when(e) * 2 + (e.type === 'Warning' ? 1 : 0);
  const latest = items.reduce<(typeof items)[number] | undefined>((a, e) => (!a || rank(e) >= rank(a) ? e : a), undefined);
  return `results claim ${name} is ${phase}${latest ? `: ${[latest.reason, latest.message].filter(Boolean).join(': ')}` : ''}`;
}
