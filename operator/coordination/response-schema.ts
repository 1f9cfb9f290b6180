// The shapes V1 and V2 share: an agent's response (a V2 response file, a row
// of V1's checkpoint store) and the run states of an objective.
import { z } from 'zod';

export const agentIdPattern = /^agent-(0|[1-9]\d*)$/;

export const agentResponseSchema = z
  .object({
    agentId: z.string().regex(agentIdPattern),
    index: z.number().int().nonnegative(),
    status: z.enum(['completed', 'failed']),
    exitCode: z.number().int().nullable(),
    attempts: z.number().int().nonnegative(),
    durationMs: z.number().nonnegative(),
    output: z.string(),
    outputBytes: z.number().int().nonnegative(),
    outputTruncated: z.boolean(),
    error: z.string().nullable(),
  })
  .refine((r) => r.agentId === `agent-${r.index}`, { message: 'agentId does not match index' });
export type AgentResponseFile = z.infer<typeof agentResponseSchema>;

export const swarmRunStateSchema = z.enum(['pending', 'running', 'completed', 'failed', 'timeout', 'stopped']);
