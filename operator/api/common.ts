// Schema pieces shared by the project's CRDs. Metadata keys starting with
// `x-kubernetes-` pass through to the generated OpenAPI unchanged.
import { z } from 'zod';

export const API_GROUP = 'swarm.cfn.dev';
export const API_VERSION = 'v1alpha1';
export const GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

/** The REST coordinates of this API's resources: k8s/client.ts resourcePath({ ...SWARM_RESOURCE, namespace, name }) is their path. */
export const SWARM_RESOURCE = { group: API_GROUP, version: API_VERSION, plural: 'swarms' } as const;
export const ROLLOUT_POLICY_RESOURCE = { group: API_GROUP, version: API_VERSION, plural: 'rolloutpolicies' } as const;

/** Every object the operator creates for a Swarm is labelled LABEL_SWARM=<its name>, and LABEL_MANAGED_BY=MANAGED_BY. */
export const LABEL_SWARM = 'swarm.cfn.dev/swarm';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'swarm-operator';
/** The Swarm name's share of the names derived from it: pods, claims, service accounts (the admission policy computes the same). */
export const POD_NAME_PREFIX_MAX = 230;

/** A time as Kubernetes writes metav1.Time: RFC 3339, whole seconds. */
export const kubeTime = (d: Date = new Date()): string => d.toISOString().replace(/\.\d+Z$/, 'Z');

/** A Kubernetes resource quantity: "256Mi", "1", 2. */
export const quantity = z
  .union([z.string().regex(/^[+-]?[0-9.]+([eE][+-]?[0-9]+|[KMGTPE]i?|[munkMGTPE])?$/), z.number().int()])
  .meta({ 'x-kubernetes-int-or-string': true });

export const resourceRequirements = z
  .object({
    limits: z.record(z.string(), quantity).optional().describe('Most of each resource the container may use, e.g. cpu: 500m, memory: 256Mi.'),
    requests: z.record(z.string(), quantity).optional().describe('Resources reserved for the container when it is scheduled.'),
  })
  .describe('Compute resources, as in a container spec.');

export const envVar = z
  .object({
    name: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/)
      .describe('Name of the environment variable.'),
    value: z.string().optional().describe('Its value (data: never expanded by a shell).'),
    valueFrom: z
      .record(z.string(), z.unknown())
      .optional()
      .meta({ 'x-kubernetes-preserve-unknown-fields': true })
      .describe('A Kubernetes EnvVarSource (secretKeyRef, configMapKeyRef, ...).'),
  })
  .describe('An environment variable of the agent process.');

export const condition = z.object({
  type: z.string().min(1).max(316),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.number().int().min(0).optional(),
  lastTransitionTime: z.string(),
  reason: z.string().min(1).max(1024),
  message: z.string().max(32768),
});
export type Condition = z.infer<typeof condition>;

export const conditions = z
  .array(condition)
  .max(16)
  .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });

export const localObjectReference = z.object({ name: z.string().min(1).max(253).describe('Name of the object, in the same namespace.') });

/** metadata as the API server returns it: only what the operator reads. */
export const objectMeta = z.looseObject({
  name: z.string(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  generation: z.number().int().optional(),
  resourceVersion: z.string().optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
  finalizers: z.array(z.string()).optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
