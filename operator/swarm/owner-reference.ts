// What the operator creates for a Swarm is owned by it: garbage collection
// removes it with the Swarm.
import { GROUP_VERSION } from '../api/common.js';
import type { Swarm } from '../api/swarm.js';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

export function ownerReference(swarm: Swarm): OwnerReference {
  return { apiVersion: GROUP_VERSION, kind: 'Swarm', name: swarm.metadata.name, uid: swarm.metadata.uid ?? '', controller: true, blockOwnerDeletion: true };
}
