// config/performance-limits.json: how many agents one coordinator (a `cfn run`,
// one shard) is meant for. Up to the recommended maximum is fine, up to the
// hard maximum is allowed with a warning (split the swarm into shards), beyond
// it is refused.
import { z } from 'zod';
import { parseConfig } from './config-error.js';
import { shippedConfigPath } from '../util/package-root.js';
import { readJsonFile } from './read-json-file.js';

const count = z.number().int().min(1);

const coordinatorLimitsSchema = z
  .strictObject({
    recommendedMaxAgents: count,
    maxAgents: count,
  })
  .refine((l) => l.recommendedMaxAgents <= l.maxAgents, {
    message: 'expected recommendedMaxAgents <= maxAgents',
  });

export const performanceLimitsSchema = z.strictObject({
  coordinator: coordinatorLimitsSchema,
  v1: z.strictObject({ maxAgents: count }),
});
export type PerformanceLimits = z.infer<typeof performanceLimitsSchema>;

export const PERFORMANCE_LIMITS_FILE = 'performance-limits.json';

export function loadPerformanceLimits(file: string = shippedConfigPath(PERFORMANCE_LIMITS_FILE)): PerformanceLimits {
  return parsePerformanceLimits(readJsonFile(file), file);
}

export function parsePerformanceLimits(data: unknown, file: string): PerformanceLimits {
  return parseConfig(performanceLimitsSchema, data, file);
}

export type AgentLimitVerdict = { ok: true; warning?: string } | { ok: false; reason: string };

/** Whether one coordinator may run `agents` agents; a warning above the recommended maximum. */
export function checkAgentLimits(limits: PerformanceLimits, agents: number): AgentLimitVerdict {
  const l = limits.coordinator;
  if (!Number.isInteger(agents) || agents < 1) return { ok: false, reason: `agents: expected an integer >= 1, got ${agents}` };
  if (agents > l.maxAgents) {
    return { ok: false, reason: `${agents} agents exceed one coordinator's maximum of ${l.maxAgents}: split the swarm into shards (--shard I/N)` };
  }
  if (agents > l.recommendedMaxAgents) {
    return { ok: true, warning: `${agents} agents on one coordinator is more than the recommended ${l.recommendedMaxAgents}: consider shards (--shard I/N)` };
  }
  return { ok: true };
}
