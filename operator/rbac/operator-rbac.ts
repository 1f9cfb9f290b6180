// The operator's own permissions, the source of truth of the Helm chart's and
// kustomize's RBAC (`npm run gen:rbac`). Least privilege: what the operator
// calls (checked against a recorded run by test/integration/packaging), plus
// what it must hold to grant the coordinator's Role (RBAC refuses to create a
// Role with rules its creator does not hold), plus what admission checks.
import { API_GROUP, GROUP_VERSION } from '../api/common.js';
import { generateCrds } from '../api/crds.js';
import { coordinatorRbac } from '../swarm/coordinator-rbac.js';
import type { Swarm } from '../api/swarm.js';

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

/** Requests the operator makes in the namespaces it watches. */
export const USED_RULES: readonly PolicyRule[] = [
  // Informers list+watch; the finalizer is a merge patch; TTL expiry deletes.
  { apiGroups: [API_GROUP], resources: ['swarms'], verbs: ['delete', 'list', 'patch', 'watch'] },
  { apiGroups: [API_GROUP], resources: ['swarms/status'], verbs: ['patch'] },
  { apiGroups: [API_GROUP], resources: ['rolloutpolicies'], verbs: ['list', 'watch'] },
  { apiGroups: [API_GROUP], resources: ['rolloutpolicies/status'], verbs: ['patch'] },
  // Coordinator pods: created, re-read before a retry, deleted on fallback/stop.
  { apiGroups: [''], resources: ['pods'], verbs: ['create', 'delete', 'get', 'list', 'watch'] },
  // The coordinator's identity, by server-side apply (create when missing).
  { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['create', 'patch'] },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'], verbs: ['create', 'patch'] },
  // Events written; a results claim's read (why it does not bind).
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'list', 'patch'] },
  // The results claim: read before a pod mounts it, created by server-side apply (create + patch).
  { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['create', 'get', 'patch'] },
];

/**
 * Checked by admission, never requested: with OwnerReferencesPermissionEnforcement
 * (OpenShift enables it) an object whose ownerReference to its Swarm sets
 * blockOwnerDeletion (the coordinator's pod, ServiceAccount, Role, RoleBinding)
 * may only be written by whoever can update that Swarm's finalizers.
 */
export const ADMISSION_RULES: readonly PolicyRule[] = [{ apiGroups: [API_GROUP], resources: ['swarms/finalizers'], verbs: ['update'] }];

/** Leader election, in the operator's own namespace only. */
export const LEADER_ELECTION_RULES: readonly PolicyRule[] = [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create', 'get', 'update'] }];

/**
 * `--manage-crds` (chart: crds.manage): read and server-side apply the
 * project's own CRDs, by name. No create: the chart's crds/ or kustomize
 * installs them, so the operator cannot define new kinds.
 */
export const crdRules = (): PolicyRule[] => [
  {
    apiGroups: ['apiextensions.k8s.io'],
    resources: ['customresourcedefinitions'],
    resourceNames: generateCrds()
      .map((c) => (c.metadata as { name: string }).name)
      .sort(),
    verbs: ['get', 'patch'],
  },
];

const SAMPLE_SWARM = { apiVersion: GROUP_VERSION, kind: 'Swarm', metadata: { name: 'x', namespace: 'x', uid: 'x' } } as unknown as Swarm;

/** The coordinator Role's rules without resourceNames: what granting it requires. */
export function delegatedRules(): PolicyRule[] {
  return coordinatorRbac(SAMPLE_SWARM).role.rules.map((r) => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] }));
}

/** group -> resource -> verbs, the comparable form of a rule list. */
export function ruleSet(rules: readonly PolicyRule[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const r of rules) {
    for (const g of r.apiGroups) {
      for (const res of r.resources) {
        const key = `${g}|${res}`;
        let verbs = out.get(key);
        if (!verbs) out.set(key, (verbs = new Set()));
        for (const v of r.verbs) verbs.add(v);
      }
    }
  }
  return out;
}

/** Canonical rules: one per group and verb set, resources and verbs sorted. */
export function canonicalRules(rules: readonly PolicyRule[]): PolicyRule[] {
  const byGroupVerbs = new Map<string, PolicyRule>();
  for (const [key, verbs] of ruleSet(rules)) {
    const [group = '', resource = ''] = key.split('|');
    const v = [...verbs].sort();
    const k = `${group}|${v.join(',')}`;
    const rule = byGroupVerbs.get(k) ?? { apiGroups: [group], resources: [], verbs: v };
    rule.resources.push(resource);
    byGroupVerbs.set(k, rule);
  }
  return [...byGroupVerbs.values()]
    .map((r) => ({ ...r, resources: r.resources.sort() }))
    .sort((a, b) => (a.apiGroups[0]! + a.resources[0]!).localeCompare(b.apiGroups[0]! + b.resources[0]!));
}

/** Everything the operator needs in a watched namespace (or cluster-wide). */
export const operatorRules = (): PolicyRule[] => canonicalRules([...USED_RULES, ...delegatedRules(), ...ADMISSION_RULES]);
export const leaderElectionRules = (): PolicyRule[] => canonicalRules(LEADER_ELECTION_RULES);

/** Maps one API request to the RBAC verb+resource it needs (apply to a new object also needs create). */
export function requestToRules(method: string, path: string, query: Record<string, unknown>): PolicyRule[] {
  const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/[^/]+)?\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(path);
  if (!m) throw new Error(`not a resource path: ${path}`);
  const group = m[1] ?? '';
  // /api/v1/namespaces/<ns> itself is the namespaces resource; not used by the operator.
  const [, , resource, name, sub] = m;
  const res = sub ? `${resource}/${sub}` : resource!;
  const named = name !== undefined;
  const verbs: string[] = [];
  switch (method) {
    case 'GET':
      verbs.push(query.watch ? 'watch' : named ? 'get' : 'list');
      break;
    case 'POST':
      verbs.push('create');
      break;
    case 'PUT':
      verbs.push('update');
      break;
    case 'PATCH':
      verbs.push('patch');
      // Server-side apply (force is only set by apply) creates a missing object.
      if (query.force !== undefined && !sub) verbs.push('create');
      break;
    case 'DELETE':
      verbs.push(named ? 'delete' : 'deletecollection');
      break;
    default:
      throw new Error(`unexpected method ${method}`);
  }
  return [{ apiGroups: [group], resources: [res], verbs }];
}
