// Delivery is completed work: the one definition of the delivery rate and of
// the success rule every layer applies (V1, V2's TypeScript side, `cfn run`,
// the coordinator pod, the Swarm's completion, rollout gates), and the run
// status figures V1 and V2 compute from their counts.
import type { SwarmRunState, RunStatus } from './types.js';

/**
 * Completed agents / total in percent, truncated to one decimal like the V2
 * engine's status.json (never more than is true: 999/1000 is 99.9, not 100).
 * 100 when there are no agents.
 */
export function deliveryRate(completed: number, total: number): number {
  if (total <= 0) return 100;
  return Math.floor((completed * 1000) / total + 1e-9) / 10;
}

/** Whether completed/total meets a minimum delivery rate in percent, judged on the counts (not on a rounded rate). */
export function meetsMinDelivery(completed: number, total: number, minDeliveryRate: number): boolean {
  if (total <= 0) return true;
  return completed * 100 + 1e-9 * total >= minDeliveryRate * total;
}

/** "489/500 agents completed, 11 failed: delivery 97.8%": the figures every message about a finished run carries. */
export function deliveryFigures(agents: { total: number; completed: number; failed: number }): string {
  return `${agents.completed}/${agents.total} agents completed, ${agents.failed} failed: delivery ${deliveryRate(agents.completed, agents.total)}%`;
}

/** Agents completed per second over `elapsedMs`, to one decimal; 0 before any time passed. */
export function throughputPerSec(completed: number, elapsedMs: number): number {
  return elapsedMs > 0 ? Math.round(((completed * 1000) / elapsedMs) * 10) / 10 : 0;
}

/**
 * A run's status from its counts: `completed` and `failed` include the agents
 * final in an earlier run (they count for delivery); the throughput counts
 * only `completedThisRun`, over `elapsedMs` (start to last response, or now).
 */
export function runStatus(
  objectiveId: string,
  status: SwarmRunState,
  counts: { total: number; completed: number; failed: number; completedThisRun: number },
  elapsedMs: number,
): RunStatus {
  return {
    objectiveId,
    status,
    agents: { total: counts.total, completed: counts.completed, failed: counts.failed },
    deliveryRate: deliveryRate(counts.completed, counts.total),
    coordinationTime: Math.round(elapsedMs),
    throughputAgentsPerSec: throughputPerSec(counts.completedThisRun, elapsedMs),
  };
}
