// Least privilege for a coordinator pod: it may patch its own Swarm's status,
// nothing else (it reads its Swarm through that patch: coordinate.ts).
// Two ways to get there (--coordinator-identity):
// - per-swarm: a ServiceAccount, Role (resourceNames: the Swarm) and
//   RoleBinding per Swarm, owned by it: three objects per new Swarm;
// - shared: one ServiceAccount, Role and RoleBinding per namespace
//   (`coordinator.swarm.cfn.dev`, created once), and a ValidatingAdmissionPolicy that
//   lets a request of that ServiceAccount write only the Swarm its pod runs
//   (the pod name a bound token carries). No objects per Swarm: 1000 new
//   Swarms cost the API server 3000 creates less. Only the chart's (or
//   config/rbac's) policy makes it safe, so it is never the CLI's default.
import { API_GROUP, LABEL_MANAGED_BY, LABEL_SWARM, MANAGED_BY, POD_NAME_PREFIX_MAX } from '../api/common.js';
import { coordinatorServiceAccount } from './coordinator-pod.js';
import { ownerReference } from './owner-reference.js';
import { SHARD_COORDINATOR_FIELDS } from './shard-status.js';
import type { Swarm } from '../api/swarm.js';

export type CoordinatorIdentity = 'per-swarm' | 'shared';
export const COORDINATOR_IDENTITIES = ['per-swarm', 'shared'] as const;

/**
 * The shared ServiceAccount, Role and RoleBinding of a namespace. Not of the
 * form `<name>-coordinator`: no per-swarm object (see coordinatorServiceAccount)
 * can ever have this name, whatever the Swarm is called.
 */
export const SHARED_COORDINATOR = 'coordinator.swarm.cfn.dev';
/** As the chart names it for the release swarm-operator (it prefixes the release's full name). */
export const COORDINATOR_POLICY = 'swarm-operator-coordinator.swarm.cfn.dev';
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';

const celList = (xs: readonly string[]) => `[${xs.map((x) => `'${x}'`).join(', ')}]`;
/** Keys of an entry a shard's coordinator may set or change: its progress, and the list map's key (same by construction). */
const SHARD_WRITABLE = celList(['index', ...SHARD_COORDINATOR_FIELDS]);

const coordinatorRules = (resourceNames?: string[]) => [
  { apiGroups: [API_GROUP], resources: ['swarms/status'], ...(resourceNames ? { resourceNames } : {}), verbs: ['patch'] },
];

function rbacObjects(name: string, namespace: string, metadataExtra: Record<string, unknown>, resourceNames?: string[]) {
  const metadata = { name, namespace, ...metadataExtra };
  return {
    serviceAccount: { apiVersion: 'v1', kind: 'ServiceAccount', metadata },
    role: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata, rules: coordinatorRules(resourceNames) },
    roleBinding: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  };
}

/** Per-swarm identity: owned by the Swarm, removed with it. */
export function coordinatorRbac(swarm: Swarm) {
  return rbacObjects(
    coordinatorServiceAccount(swarm),
    swarm.metadata.namespace ?? 'default',
    { labels: { [LABEL_SWARM]: swarm.metadata.name, [LABEL_MANAGED_BY]: MANAGED_BY }, ownerReferences: [ownerReference(swarm)] },
    [swarm.metadata.name],
  );
}

/** Shared identity of a namespace: no owner (it outlives each Swarm); the admission policy scopes it. */
export function sharedCoordinatorRbac(namespace: string) {
  return rbacObjects(SHARED_COORDINATOR, namespace, { labels: { [LABEL_MANAGED_BY]: MANAGED_BY } });
}

/**
 * The policy that makes the shared identity least privilege: a request of any
 * `coordinator.swarm.cfn.dev` ServiceAccount may only update the status of the Swarm
 * whose coordinator pod its bound token names: `<swarm>-v1-<n>` / `<swarm>-v2-<n>`
 * (a single-shard swarm: its whole status), or `<swarm>-<version>-<n>-s<i>`
 * (shard i of a sharded swarm: only the progress fields of its own entry of
 * status.shards; no other entry, no field outside status.shards). Admission
 * never sees reads: that is why the coordinator reads its Swarm through a patch.
 */
export function coordinatorAdmissionPolicy() {
  const labels = { [LABEL_MANAGED_BY]: MANAGED_BY };
  const denied = `'a swarm coordinator may only update its own Swarm\\'s status: ' + (variables.pod == '' ? 'the token names no pod' : 'pod ' + variables.pod) + ' may not ' + request.operation + ' ' + request.resource.resource + (request.subResource == '' ? '' : '/' + request.subResource) + ' ' + request.name`;
  const shardPod = `'pod ' + variables.pod + ' (shard ' + string(variables.shard) + ' of swarm ' + request.name + ') may only change the progress of its own entry of status.shards (index ' + string(variables.shard) + ')'`;
  return {
    policy: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: COORDINATOR_POLICY, labels },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          // '*' alone would not match subresources (swarms/status); '*/*' matches both.
          resourceRules: [{ apiGroups: [API_GROUP], apiVersions: ['*'], operations: ['*'], resources: ['*/*'] }],
        },
        matchConditions: [
          {
            name: 'shared-coordinator-service-account',
            expression: `request.userInfo.username.startsWith('system:serviceaccount:') && request.userInfo.username.endsWith(':${SHARED_COORDINATOR}')`,
          },
        ],
        // Evaluated only where used: the shard variables only for a shard pod's status update.
        variables: [
          {
            name: 'pod',
            expression: `has(request.userInfo.extra) && '${POD_NAME_EXTRA}' in request.userInfo.extra && size(request.userInfo.extra['${POD_NAME_EXTRA}']) == 1 ? request.userInfo.extra['${POD_NAME_EXTRA}'][0] : ''`,
          },
          {
            name: 'prefix',
            expression: `(size(request.name) > ${POD_NAME_PREFIX_MAX} ? request.name.substring(0, ${POD_NAME_PREFIX_MAX}) : request.name) + '-'`,
          },
          { name: 'suffix', expression: `variables.pod.startsWith(variables.prefix) ? variables.pod.substring(size(variables.prefix)) : ''` },
          // The shard a pod `<prefix>-<version>-<n>-s<i>` runs; -1: not a shard's pod.
          {
            name: 'shard',
            expression: `variables.suffix.matches('^v[12]-[0-9]+-s[0-9]{1,2}$') ? int(variables.suffix.substring(variables.suffix.lastIndexOf('-s') + 2)) : -1`,
          },
          { name: 'oldStatus', expression: `has(oldObject.status) ? oldObject.status : {}` },
          { name: 'newStatus', expression: `has(object.status) ? object.status : {}` },
          { name: 'oldShards', expression: `has(oldObject.status) && has(oldObject.status.shards) ? oldObject.status.shards : []` },
          { name: 'newShards', expression: `has(object.status) && has(object.status.shards) ? object.status.shards : []` },
          { name: 'oldMine', expression: `variables.oldShards.filter(e, e.index == variables.shard)` },
          { name: 'newMine', expression: `variables.newShards.filter(e, e.index == variables.shard)` },
          { name: 'oldEntry', expression: `size(variables.oldMine) == 0 ? {} : variables.oldMine[0]` },
          { name: 'newEntry', expression: `size(variables.newMine) == 0 ? {} : variables.newMine[0]` },
        ],
        validations: [
          {
            expression: `request.resource.resource == 'swarms' && request.subResource == 'status' && request.operation == 'UPDATE' && (variables.suffix.matches('^v[12]-[0-9]+$') || variables.shard >= 0)`,
            messageExpression: denied,
            reason: 'Forbidden',
          },
          {
            expression: `variables.shard < 0 || (variables.newStatus.all(k, k == 'shards' || (k in variables.oldStatus && variables.oldStatus[k] == variables.newStatus[k])) && variables.oldStatus.all(k, k == 'shards' || k in variables.newStatus))`,
            messageExpression: `${shardPod} + ', not status fields outside it: ' + (variables.newStatus.filter(k, k != 'shards' && !(k in variables.oldStatus && variables.oldStatus[k] == variables.newStatus[k])) + variables.oldStatus.filter(k, k != 'shards' && !(k in variables.newStatus))).join(', ')`,
            reason: 'Forbidden',
          },
          {
            expression: `variables.shard < 0 || (variables.newShards.all(e, e.index == variables.shard || variables.oldShards.exists(o, o.index == e.index && o == e)) && variables.oldShards.all(o, o.index == variables.shard || variables.newShards.exists(e, e.index == o.index)))`,
            messageExpression: `${shardPod} + ', not the entries of shards ' + (variables.newShards.filter(e, e.index != variables.shard && !variables.oldShards.exists(o, o.index == e.index && o == e)).map(e, string(e.index)) + variables.oldShards.filter(o, o.index != variables.shard && !variables.newShards.exists(e, e.index == o.index)).map(o, string(o.index))).join(', ')`,
            reason: 'Forbidden',
          },
          {
            expression: `variables.shard < 0 || (variables.newEntry.all(k, k in ${SHARD_WRITABLE} || (k in variables.oldEntry && variables.oldEntry[k] == variables.newEntry[k])) && variables.oldEntry.all(k, k in ${SHARD_WRITABLE} || k in variables.newEntry))`,
            messageExpression: `${shardPod} + ', not the operator\\'s fields of it: ' + (variables.newEntry.filter(k, !(k in ${SHARD_WRITABLE}) && !(k in variables.oldEntry && variables.oldEntry[k] == variables.newEntry[k])) + variables.oldEntry.filter(k, !(k in ${SHARD_WRITABLE}) && !(k in variables.newEntry))).join(', ')`,
            reason: 'Forbidden',
          },
        ],
      },
    },
    binding: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: COORDINATOR_POLICY, labels },
      spec: { policyName: COORDINATOR_POLICY, validationActions: ['Deny'] },
    },
  };
}
