// Least privilege for a coordinator pod: its own ServiceAccount, allowed to
// read its own Swarm and patch that Swarm's status, nothing else.
import { API_GROUP } from '../api/common.js';
import { coordinatorServiceAccount, LABEL_MANAGED_BY, LABEL_SWARM, MANAGED_BY, ownerReference } from './coordinator-pod.js';
import type { Swarm } from '../api/swarm.js';

export function coordinatorRbac(swarm: Swarm) {
  const name = coordinatorServiceAccount(swarm);
  const namespace = swarm.metadata.namespace ?? 'default';
  const metadata = {
    name,
    namespace,
    labels: { [LABEL_SWARM]: swarm.metadata.name, [LABEL_MANAGED_BY]: MANAGED_BY },
    ownerReferences: [ownerReference(swarm)],
  };
  return {
    serviceAccount: { apiVersion: 'v1', kind: 'ServiceAccount', metadata },
    role: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata,
      rules: [
        { apiGroups: [API_GROUP], resources: ['swarms'], resourceNames: [swarm.metadata.name], verbs: ['get', 'watch'] },
        { apiGroups: [API_GROUP], resources: ['swarms/status'], resourceNames: [swarm.metadata.name], verbs: ['get', 'patch'] },
      ],
    },
    roleBinding: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  };
}
