// Validation of an ObjectiveSpec before the engine sees it: a bad spec is a
// clear error up front, not a half-started swarm.
import { z } from 'zod';
import type { ObjectiveSpec } from '../types.js';
import { ID_PATTERN } from '../../util/ids.js';
import { taskEnvNameProblem } from '../../tasks/task-list.js';
import { indexRangeProblem } from '../index-range.js';

export const objectiveSpecSchema = z
  .object({
    id: z
      .string()
      .regex(ID_PATTERN, `must match ${ID_PATTERN.source}`)
      .refine((s) => s !== '.' && s !== '..', 'must not be . or ..'),
    description: z.string(),
    agents: z.number().int().min(1).max(100_000),
    tasks: z.array(z.string()).optional(),
    taskEnv: z.array(z.record(z.string(), z.string()).optional()).optional(),
    agentCommand: z.array(z.string()).min(1, 'agent command is empty'),
    agentTimeoutSeconds: z.number().positive(),
    retries: z.number().int().min(0).max(100),
    concurrency: z.number().int().min(1).max(100_000),
    timeoutSeconds: z.number().positive(),
    maxOutputBytes: z.number().int().min(1),
    indexRange: z.object({ start: z.number().int().nonnegative(), end: z.number().int().positive() }).optional(),
    completedIndexes: z.array(z.number().int().nonnegative()).optional(),
    failedIndexes: z.array(z.number().int().nonnegative()).optional(),
    noRetryExitCodes: z.array(z.number().int().min(1).max(255)).max(255).optional(),
  })
  .refine((s) => !s.tasks || s.tasks.length <= s.agents, { message: 'more tasks than agents', path: ['tasks'] })
  .refine((s) => !s.taskEnv || s.taskEnv.length <= s.agents, { message: 'more task environments than agents', path: ['taskEnv'] })
  .refine((s) => !s.taskEnv || s.taskEnv.every((e) => !e || Object.keys(e).every((n) => taskEnvNameProblem(n) === null)), {
    message: 'a task environment name is invalid or belongs to the engine',
    path: ['taskEnv'],
  })
  .refine((s) => !s.completedIndexes || s.completedIndexes.every((i) => i < s.agents), {
    message: 'completed index out of range',
    path: ['completedIndexes'],
  })
  .refine((s) => !s.failedIndexes || s.failedIndexes.every((i) => i < s.agents), {
    message: 'failed index out of range',
    path: ['failedIndexes'],
  })
  .superRefine((s, ctx) => {
    const problem = indexRangeProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem.message, path: [problem.field] });
  })
  .refine((s) => !s.failedIndexes || !s.completedIndexes || !s.failedIndexes.some((i) => s.completedIndexes?.includes(i)), {
    message: 'an index is both completed and failed',
    path: ['failedIndexes'],
  });

export class InvalidSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidSpecError';
  }
}

export function validateSpec(spec: ObjectiveSpec): ObjectiveSpec {
  const parsed = objectiveSpecSchema.safeParse(spec);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'spec';
    throw new InvalidSpecError(`invalid objective spec: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return spec;
}
