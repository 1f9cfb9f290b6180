// The RolloutPolicy resource: what share of new Swarms runs on V2. Platform
// teams change spec through Git; the operator only ever writes status.
import { z } from 'zod';
import { conditions, GROUP_VERSION, objectMeta } from './common.js';

const rule = (r: string, message: string, fieldPath?: string) => (fieldPath ? { rule: r, message, fieldPath } : { rule: r, message });

export const rolloutGates = z
  .object({
    maxFallbackRate: z.number().min(0).max(100).default(5).describe('Highest share (percent) of V2 swarms that fell back to V1 for the step to hold.'),
    minDeliveryRate: z
      .number()
      .min(0)
      .max(100)
      .default(95)
      .describe('Lowest average delivery rate (completed agents / total, percent) of finished V2 swarms for the step to hold.'),
    minSamples: z.number().int().min(1).max(100000).default(20).describe('V2 swarms needed before a gate is judged at all.'),
    windowSwarms: z
      .number()
      .int()
      .min(1)
      .max(100000)
      .default(100)
      .describe('A step is judged on the V2 swarms routed since it began, at most this many (the newest).'),
    minDurationSeconds: z.number().int().min(0).max(2592000).default(0).describe('A step is observed at least this long before it is promoted.'),
  })
  .describe('When a step holds (promote) and when it is breached (roll back).');

export const rolloutStep = z
  .object({
    percentage: z.number().int().min(1).max(100).describe('V2 share of this step.'),
    gates: rolloutGates.prefault({}),
  })
  .describe('One promotion step: a V2 share and the gates that must hold at it.');

export const rolloutPolicySpec = z
  .object({
    v2Percentage: z.number().int().min(0).max(100).describe('Share of new Swarms (percent) routed to V2: the knob GitOps changes.'),
    default: z.boolean().default(false).describe('Applies to Swarms of this namespace that name no policy (one default per namespace).'),
    steps: z
      .array(rolloutStep)
      .max(20)
      .optional()
      .meta({
        'x-kubernetes-validations': [
          rule(
            'self.map(s, s.percentage).isSorted() && self.all(a, self.exists_one(b, b.percentage == a.percentage))',
            'steps must be in strictly ascending percentage order',
          ),
        ],
      })
      .describe('Promotion steps above v2Percentage, e.g. 10, 50, 100, each with its gates.'),
    gates: rolloutGates.prefault({}).describe('Gates of the v2Percentage step itself (before the first step).'),
    autoPromote: z.boolean().default(false).describe('Advance to the next step when the current one holds over minSamples swarms.'),
    rollbackOnBreach: z.boolean().default(true).describe('Route every new Swarm to V1 when a gate is breached.'),
    paused: z.boolean().default(false).describe('Hold the effective percentage where it is: no promotion, no rollback.'),
  })
  .describe('Desired V2 rollout.');

export const rolloutPhase = z.enum(['Baseline', 'Canary', 'Balanced', 'Full', 'Paused', 'RolledBack']);

/** Annotations `kubectl swarm rollout` sets: what GitOps leaves to the operator, never the spec. */
export const ROLLOUT_ANNOTATIONS = {
  /** "true": hold the evaluation as spec.paused does (removed by resume). */
  paused: 'rollout.swarm.cfn.dev/paused',
  /** A request token (an RFC 3339 time): move to the next step now. */
  promote: 'rollout.swarm.cfn.dev/promote',
  /** A request token: V2 at 0% for new swarms until the next spec change or a retry. */
  abort: 'rollout.swarm.cfn.dev/abort',
  /** A request token: restart the evaluation from the spec (after an abort or a rollback). */
  retry: 'rollout.swarm.cfn.dev/retry',
} as const;
export type RolloutRequestAction = 'pause' | 'promote' | 'abort' | 'retry';

export const handledRequest = z
  .object({
    token: z.string().max(128).describe('The annotation value handled ("true"/"" for pause).'),
    accepted: z.boolean().describe('Whether the operator acted on it (a promote at the last step or while rolled back is refused).'),
    message: z.string().max(1024),
    time: z.string(),
  })
  .describe('The last request of one kind the operator handled.');

export const rolloutPolicyStatus = z.object({
  observedGeneration: z.number().int().optional(),
  effectivePercentage: z.number().int().min(0).max(100).optional(),
  phase: rolloutPhase.optional(),
  /** Index into spec.steps of the current step; -1 while at spec.v2Percentage. */
  currentStep: z.number().int().min(-1).optional(),
  stepStartTime: z.string().optional(),
  observed: z
    .object({
      v2Swarms: z.number().int(),
      v1Swarms: z.number().int(),
      fallbacks: z.number().int(),
      fallbackRate: z.number(),
      deliveryRate: z.number().optional(),
      finishedV2Swarms: z.number().int(),
    })
    .optional(),
  lastDecision: z.object({ time: z.string(), from: z.number().int(), to: z.number().int(), reason: z.string().max(4096) }).optional(),
  /** The spec the current evaluation started from: a change of `paused` alone holds or resumes it, any other change starts afresh. */
  evaluation: z
    .object({
      generation: z.number().int().describe('Spec generation the evaluation started from.'),
      specKey: z.string().max(64).describe('Digest of that spec without spec.paused.'),
      since: z.string().optional().describe('Set by a retry: swarms routed before this time are not judged again.'),
    })
    .optional(),
  requests: z
    .object({ pause: handledRequest.optional(), promote: handledRequest.optional(), abort: handledRequest.optional(), retry: handledRequest.optional() })
    .optional()
    .describe('Requests of `kubectl swarm rollout` (annotations rollout.swarm.cfn.dev/*) the operator handled, each once.'),
  conditions: conditions.optional(),
});

export const rolloutPolicy = z.object({
  apiVersion: z.literal(GROUP_VERSION),
  kind: z.literal('RolloutPolicy'),
  metadata: objectMeta,
  spec: rolloutPolicySpec,
  status: rolloutPolicyStatus.optional(),
});

export type RolloutPolicySpec = z.output<typeof rolloutPolicySpec>;
export type RolloutPolicyStatus = z.output<typeof rolloutPolicyStatus>;
export type RolloutPolicy = z.output<typeof rolloutPolicy>;
export type RolloutGates = z.output<typeof rolloutGates>;
