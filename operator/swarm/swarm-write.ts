// How the operator writes a Swarm's status: server-side apply of the fields it
// owns (the coordinators own the rest, see shard-status.ts), with the
// resourceVersion it read as a precondition.
import { GROUP_VERSION, SWARM_RESOURCE as SWARMS } from '../api/common.js';
import { resourcePath } from '../k8s/client.js';
import { AGGREGATED_FIELDS, operatorShardFields, pickDefined } from './shard-status.js';
import { swarmShardCount } from './shards.js';
import type { Swarm, SwarmResourceStatus } from '../api/swarm.js';
import type { KubeClient, KubeObject } from '../k8s/client.js';

export const FIELD_MANAGER = 'swarm-operator';
export const FINALIZER = 'swarm.cfn.dev/cleanup';

/** Status fields the operator owns; the coordinator owns the rest (see api/swarm.ts). */
const OPERATOR_FIELDS = [
  'phase',
  'observedGeneration',
  'version',
  'versionReason',
  'shardCount',
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
] as const satisfies readonly (keyof SwarmResourceStatus)[];

export function involved(swarm: Swarm) {
  return {
    apiVersion: GROUP_VERSION,
    kind: 'Swarm',
    name: swarm.metadata.name,
    namespace: swarm.metadata.namespace ?? 'default',
    ...(swarm.metadata.uid ? { uid: swarm.metadata.uid } : {}),
  };
}

/**
 * Server-side apply of the operator's status fields, with the resourceVersion
 * read as a precondition: its decisions, the operator fields of each
 * status.shards entry, and for a swarm of several shards the swarm-wide
 * figures it sums from them.
 */
export async function applyOperatorStatus(client: KubeClient, swarm: Swarm, status: SwarmResourceStatus, precondition = true): Promise<KubeObject> {
  const owned = pickDefined(status, swarmShardCount(swarm) > 1 ? [...OPERATOR_FIELDS, ...AGGREGATED_FIELDS] : OPERATOR_FIELDS);
  if (status.shards) owned.shards = status.shards.map(operatorShardFields);
  return client.apply(
    resourcePath({ ...SWARMS, namespace: swarm.metadata.namespace ?? 'default', name: swarm.metadata.name }),
    {
      apiVersion: GROUP_VERSION,
      kind: 'Swarm',
      metadata: {
        name: swarm.metadata.name,
        namespace: swarm.metadata.namespace,
        ...(precondition ? { resourceVersion: swarm.metadata.resourceVersion } : {}),
      },
      status: owned,
    },
    { fieldManager: FIELD_MANAGER, force: true, subresource: 'status' },
  );
}
