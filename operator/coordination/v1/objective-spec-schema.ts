// ObjectiveSpec as data: validated when an objective is submitted and again
// when read back from the database (nothing on disk is trusted unparsed).
import { z } from 'zod';
import { isValidId } from '../../util/ids.js';
import { taskEnvNameProblem } from '../../tasks/task-list.js';
import type { ObjectiveSpec } from '../types.js';
import { indexRangeProblem } from '../index-range.js';

export const objectiveSpecSchema = z.object({
  id: z.string().refine(isValidId, { message: 'expected an id matching ^[a-z0-9][a-z0-9._-]{0,62}$' }),
  description: z.string(),
  agents: z.number().int().min(1),
  tasks: z.array(z.string()).readonly().optional(),
  taskEnv: z
    .array(
      z
        .record(z.string(), z.string())
        .refine((e) => Object.keys(e).every((n) => taskEnvNameProblem(n) === null), { message: 'a task environment name is invalid or belongs to the engine' })
        .readonly()
        .optional(),
    )
    .readonly()
    .optional(),
  agentCommand: z.array(z.string()).min(1).readonly(),
  agentTimeoutSeconds: z.number().positive(),
  retries: z.number().int().min(0),
  concurrency: z.number().int().min(1),
  timeoutSeconds: z.number().positive(),
  maxOutputBytes: z.number().int().min(1),
  indexRange: z
    .object({ start: z.number().int().min(0), end: z.number().int().min(1) })
    .readonly()
    .optional(),
  completedIndexes: z.array(z.number().int().min(0)).readonly().optional(),
  failedIndexes: z.array(z.number().int().min(0)).readonly().optional(),
  noRetryExitCodes: z.array(z.number().int().min(1).max(255)).max(255).readonly().optional(),
}) satisfies z.ZodType<ObjectiveSpec>;

export class InvalidObjectiveError extends Error {
  constructor(detail: string) {
    super(`invalid objective: ${detail}`);
    this.name = 'InvalidObjectiveError';
  }
}

export function parseObjectiveSpec(data: unknown): ObjectiveSpec {
  const parsed = objectiveSpecSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length ? issue.path.join('.') : '(root)';
    throw new InvalidObjectiveError(`${where}: ${issue?.message ?? 'invalid'}`);
  }
  const spec = parsed.data;
  for (const field of ['completedIndexes', 'failedIndexes'] as const) {
    const bad = spec[field]?.find((i) => i >= spec.agents);
    if (bad !== undefined) throw new InvalidObjectiveError(`${field}: ${bad} is not below agents (${spec.agents})`);
  }
  const problem = indexRangeProblem(spec);
  if (problem) throw new InvalidObjectiveError(`${problem.field}: ${problem.message}`);
  const completed = new Set(spec.completedIndexes ?? []);
  const both = spec.failedIndexes?.find((i) => completed.has(i));
  if (both !== undefined) throw new InvalidObjectiveError(`failedIndexes: ${both} is also in completedIndexes`);
  return spec;
}

/** The fields that define what an objective runs (a resume must not change them). */
export function objectiveIdentity(spec: ObjectiveSpec): string {
  return JSON.stringify([spec.description, spec.agents, spec.tasks ?? null, spec.agentCommand, spec.taskEnv ?? null]);
}
