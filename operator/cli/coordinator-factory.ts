// The one place `cfn run` obtains its coordinator. V1 and version selection
// (--version, rollout, fallback) plug in here without touching the run command.
import type { ICoordinator, Topology } from '../coordination/types.js';
import { BashCoordinator } from '../coordination/v2/bash-coordinator.js';
import type { Logger } from '../observability/logger.js';
import { AUTO_FLAT_MAX_AGENTS } from './defaults.js';
import type { RunOptions, TopologyChoice } from './run-options.js';

export interface CoordinatorContext {
  logger: Logger;
  env: NodeJS.ProcessEnv;
}

export interface ObtainedCoordinator {
  coordinator: ICoordinator;
  /** Already start()ed. */
  started: true;
}

export function resolveTopology(choice: TopologyChoice, agents: number): Topology {
  if (choice !== 'auto') return choice;
  return agents > AUTO_FLAT_MAX_AGENTS ? 'hybrid' : 'flat';
}

/** Creates and starts the coordinator for a run; rejects with the precise reason when none can start. */
export async function obtainCoordinator(options: RunOptions, ctx: CoordinatorContext): Promise<ObtainedCoordinator> {
  const coordinator = new BashCoordinator({
    env: ctx.env,
    logger: ctx.logger,
    ...(options.shmPath !== undefined ? { shmPath: options.shmPath } : {}),
  });
  await coordinator.start();
  return { coordinator, started: true };
}
