// Routes a new Swarm by its RolloutPolicy: a stable hash of the Swarm's UID
// into 100 buckets against the policy's effective percentage. The caller
// records the answer on the Swarm once; it never changes afterwards.
import { rolloutPolicy as policySchema } from '../api/rollout-policy.js';
import { rolloutBucket } from '../coordination/version/rollout-bucket.js';
import { RetryLaterError } from '../k8s/errors.js';
import { statusIsCurrent } from './rollout-evaluation.js';
import type { RolloutPolicy } from '../api/rollout-policy.js';
import type { Swarm } from '../api/swarm.js';
import type { KubeObject } from '../k8s/client.js';
import type { VersionDecision } from '../coordination/version/decide-version.js';

/**
 * The percentage new swarms are routed with: status once the operator has
 * evaluated the current spec generation (or a spec that differs from it in
 * `paused` only), else the spec itself (a Git edit takes effect at once; its
 * evaluation starts from it).
 */
export function effectivePercentage(p: RolloutPolicy): number {
  const s = p.status;
  if (s?.effectivePercentage !== undefined && statusIsCurrent(p)) return s.effectivePercentage;
  return p.spec.v2Percentage;
}

/** The step new swarms are routed at: -1 (spec.v2Percentage) until the current spec was evaluated. */
export function currentStep(p: RolloutPolicy): number {
  return statusIsCurrent(p) ? (p.status?.currentStep ?? -1) : -1;
}

/** The namespace's default policy: the oldest one marked default (ties by name). */
export function defaultPolicy(policies: readonly RolloutPolicy[]): RolloutPolicy | undefined {
  return policies
    .filter((p) => p.spec.default)
    .sort(
      (a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || a.metadata.name.localeCompare(b.metadata.name),
    )[0];
}

export function parsePolicies(raw: readonly KubeObject[]): RolloutPolicy[] {
  return raw.flatMap((o) => {
    const r = policySchema.safeParse(o);
    return r.success ? [r.data] : [];
  });
}

export class RolloutRouter {
  /** `policiesIn(namespace)` reads the operator's cache. */
  constructor(private readonly policiesIn: (namespace: string) => RolloutPolicy[]) {}

  route(swarm: Swarm): VersionDecision | undefined {
    const ns = swarm.metadata.namespace ?? 'default';
    const policies = this.policiesIn(ns);
    const ref = swarm.spec.rolloutPolicyRef?.name;
    const policy = ref ? policies.find((p) => p.metadata.name === ref) : defaultPolicy(policies);
    if (ref && !policy) {
      // Deciding without it would be final: wait for the policy instead.
      throw new RetryLaterError(`RolloutPolicy ${ns}/${ref} named by spec.rolloutPolicyRef not found`, 5000);
    }
    if (!policy) return undefined;
    const percentage = effectivePercentage(policy);
    const bucket = rolloutBucket(swarm.metadata.uid ?? `${ns}/${swarm.metadata.name}`);
    const version = bucket < percentage ? 'v2' : 'v1';
    return {
      version,
      reason: `RolloutPolicy ${policy.metadata.name} at ${percentage}%: bucket ${bucket} ${version === 'v2' ? '<' : '>='} ${percentage}`,
      rollout: {
        policy: policy.metadata.name,
        bucket,
        percentage,
        ...(policy.metadata.generation !== undefined ? { generation: policy.metadata.generation } : {}),
        step: currentStep(policy),
      },
    };
  }
}
