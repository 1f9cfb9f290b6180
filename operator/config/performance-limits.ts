// config/performance-limits.json: how many agents each topology is meant for.
// Within the recommended range is fine, up to the hard maximum is allowed with
// a warning, beyond it is refused.
import { z } from 'zod';
import { parseConfig } from './config-error.js';
import { shippedConfigPath } from '../util/package-root.js';
import { readJsonFile } from './read-json-file.js';

const count = z.number().int().min(1);

const topologyLimitsSchema = z
  .strictObject({
    minAgents: count,
    recommendedMaxAgents: count,
    maxAgents: count,
  })
  .refine((l) => l.minAgents <= l.recommendedMaxAgents && l.recommendedMaxAgents <= l.maxAgents, {
    message: 'expected minAgents <= recommendedMaxAgents <= maxAgents',
  });

export const performanceLimitsSchema = z.strictObject({
  topologies: z.strictObject({ flat: topologyLimitsSchema, hybrid: topologyLimitsSchema }),
  v1: z.strictObject({ maxAgents: count }),
});
export type PerformanceLimits = z.infer<typeof performanceLimitsSchema>;
/** flat | hybrid (the coordination's Topology, named here so config depends on nothing above it). */
type Topology = keyof PerformanceLimits['topologies'];

export const PERFORMANCE_LIMITS_FILE = 'performance-limits.json';

export function loadPerformanceLimits(file: string = shippedConfigPath(PERFORMANCE_LIMITS_FILE)): PerformanceLimits {
  return parsePerformanceLimits(readJsonFile(file), file);
}

export function parsePerformanceLimits(data: unknown, file: string): PerformanceLimits {
  return parseConfig(performanceLimitsSchema, data, file);
}

export type AgentLimitVerdict =
  | { ok: true; warning?: string }
  | { ok: false; reason: string };

/** Whether `agents` agents may run on `topology`; a warning outside the recommended range. */
export function checkAgentLimits(limits: PerformanceLimits, topology: Topology, agents: number): AgentLimitVerdict {
  const l = limits.topologies[topology];
  if (!Number.isInteger(agents) || agents < 1) return { ok: false, reason: `agents: expected an integer >= 1, got ${agents}` };
  if (agents > l.maxAgents) {
    return { ok: false, reason: `${agents} agents exceed the ${topology} topology's maximum of ${l.maxAgents}` };
  }
  if (agents < l.minAgents || agents > l.recommendedMaxAgents) {
    return {
      ok: true,
      warning: `${agents} agents is outside the ${topology} topology's recommended range ${l.minAgents}-${l.recommendedMaxAgents}`,
    };
  }
  return { ok: true };
}
