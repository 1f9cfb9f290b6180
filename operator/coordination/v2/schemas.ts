// zod schemas for every file the bash engine writes (docs/v2-engine.md). The
// TypeScript side trusts nothing on disk until it parses here.
import { z } from 'zod';
import { agentIdPattern, swarmRunStateSchema } from '../response-schema.js';

export { agentResponseSchema, swarmRunStateSchema } from '../response-schema.js';
export type { AgentResponseFile } from '../response-schema.js';

export const statusFileSchema = z.object({
  objectiveId: z.string().min(1),
  status: swarmRunStateSchema,
  indexRange: z.object({ start: z.number().int().nonnegative(), end: z.number().int().nonnegative() }).optional(),
  agents: z.object({
    total: z.number().int().nonnegative(),
    completed: z.number().int().nonnegative(),
    failed: z.number().int().nonnegative(),
  }),
  deliveryRate: z.number().min(0).max(100),
  coordinationTime: z.number().nonnegative(),
  throughputAgentsPerSec: z.number().nonnegative(),
  startedAt: z.string().optional(),
  updatedAt: z.string().optional(),
  quarantined: z.number().int().nonnegative().optional(),
});
export type StatusFile = z.infer<typeof statusFileSchema>;

const checkSchema = z.object({ ok: z.boolean(), detail: z.string() });

/** health.json and `health-monitor.sh preflight --json`: heartbeat plus check results. */
export const healthFileSchema = z.looseObject({
  healthy: z.boolean(),
  reason: z.string().nullish(),
  checks: z.record(z.string(), checkSchema).optional(),
  ts: z.union([z.number(), z.string()]).optional(),
  heartbeat: z.union([z.number(), z.string()]).optional(),
});
export type HealthFile = z.infer<typeof healthFileSchema>;

const resultBodySchema = z.object({
  agentId: z.string().regex(agentIdPattern),
  index: z.number().int().nonnegative(),
  status: z.enum(['completed', 'failed']),
});

/** An agent index as the engine writes it in a batch (at most 9 digits). */
const agentIndex = z.number().int().nonnegative().max(999_999_999);

const messageBase = {
  id: z.string().regex(/^\d+-\d+-\d+$/),
  from: z.string().min(1),
  ts: z.number().int().nonnegative(),
};

export const busMessageSchema = z.discriminatedUnion('type', [
  z.object({ ...messageBase, type: z.literal('result'), body: resultBodySchema }),
  z.object({ ...messageBase, type: z.literal('batch'), body: z.object({ completed: z.array(agentIndex), failed: z.array(agentIndex) }) }),
]);
export type BusMessage = z.infer<typeof busMessageSchema>;

/** Parses JSON text with a schema; returns a one-line reason instead of throwing. */
export function parseJsonWith<T>(schema: z.ZodType<T>, text: string): { ok: true; value: T } | { ok: false; reason: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length > 0 ? first.path.join('.') : '(root)';
    return { ok: false, reason: `${where}: ${first?.message ?? 'invalid'}` };
  }
  return { ok: true, value: parsed.data };
}
