// Fields on their way out. A field is never dropped silently: for a minor
// release it stays in the schema, says "Deprecated:" in its description (so
// in `kubectl explain`), and the API server answers every request that sets it
// with a warning (kubectl prints it), through a ValidatingAdmissionPolicy in
// Warn mode generated from this list. docs/upgrading.md has the rule.
import { API_GROUP } from './common.js';

export interface DeprecatedField {
  /** Path from the object's root, e.g. spec.v2.coordinators. */
  field: string;
  since: string;
  removedIn: string;
  /** What happens to it now, and what to use instead. */
  why: string;
}

export const DEPRECATED_SWARM_FIELDS: readonly DeprecatedField[] = [
  { field: 'spec.v2.coordinators', since: '0.2.0', removedIn: '0.3.0', why: 'ignored: the V2 engine derives its sub-coordinators from agents and concurrency' },
  { field: 'spec.v2.workersPerCoordinator', since: '0.2.0', removedIn: '0.3.0', why: 'ignored: the V2 engine derives its workers per sub-coordinator from agents and concurrency; set spec.agent.concurrency' },
];

export const DEPRECATION_POLICY = `swarm-operator-deprecations.${API_GROUP}`;

/** The warning a request setting the field gets. */
export const deprecationMessage = (d: DeprecatedField): string => `${d.field} is deprecated since ${d.since} and removed in ${d.removedIn}: ${d.why}`;

/** The description's prefix in the schema. */
export const deprecatedDescription = (d: DeprecatedField): string => `Deprecated since ${d.since}, removed in ${d.removedIn}: ${d.why}.`;

/** CEL: the field is set on `object` (every step of its path present). */
function isSet(field: string): string {
  const parts = field.split('.');
  return parts.map((_, i) => `has(object.${parts.slice(0, i + 1).join('.')})`).join(' && ');
}

/** The Warn-mode policy and binding that flag every create or update of a Swarm setting a deprecated field. */
export function deprecationPolicy() {
  const labels = { 'app.kubernetes.io/managed-by': 'swarm-operator' };
  return {
    policy: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: DEPRECATION_POLICY, labels },
      spec: {
        failurePolicy: 'Ignore',
        matchConstraints: { resourceRules: [{ apiGroups: [API_GROUP], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['swarms'] }] },
        validations: DEPRECATED_SWARM_FIELDS.map((d) => ({ expression: `!(${isSet(d.field)})`, message: deprecationMessage(d) })),
      },
    },
    binding: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: DEPRECATION_POLICY, labels },
      spec: { policyName: DEPRECATION_POLICY, validationActions: ['Warn'] },
    },
  };
}
