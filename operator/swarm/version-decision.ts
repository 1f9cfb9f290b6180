// Which coordinator a new Swarm gets, and why. Decided once per swarm: the
// caller writes it to status and never asks again for that swarm.
import type { Swarm } from '../api/swarm.js';
import { swarmAgents } from '../api/swarm.js';
import type { CoordinationVersion } from '../coordination/types.js';

export interface VersionDecision {
  version: CoordinationVersion;
  reason: string;
  /** Set when a RolloutPolicy routed the swarm. */
  rollout?: { policy: string; bucket: number; percentage: number; generation?: number; step?: number };
}

export interface VersionPolicy {
  /** The operator's COORDINATION_VERSION, when set. */
  operatorVersion?: CoordinationVersion;
  /** A RolloutPolicy's routing, when one applies to the swarm. */
  rollout?: (swarm: Swarm) => VersionDecision | undefined;
  /** Used when nothing else decides. */
  defaultVersion: CoordinationVersion;
}

export function decideVersion(swarm: Swarm, policy: VersionPolicy): VersionDecision {
  const wanted = swarm.spec.coordination.version;
  if (wanted !== 'auto') return { version: wanted, reason: `spec.coordination.version=${wanted}` };
  if (policy.operatorVersion) return { version: policy.operatorVersion, reason: `operator COORDINATION_VERSION=${policy.operatorVersion}` };
  const routed = policy.rollout?.(swarm);
  if (routed) return routed;
  return { version: policy.defaultVersion, reason: `operator default ${policy.defaultVersion} (no RolloutPolicy)` };
}

export const resolveTopology = (swarm: Swarm): 'flat' | 'hybrid' =>
  swarm.spec.topology === 'auto' ? (swarmAgents(swarm.spec) > 300 ? 'hybrid' : 'flat') : swarm.spec.topology;
