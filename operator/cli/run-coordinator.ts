// The one place `cfn run` obtains its coordinator: flags, environment and
// cfn.config.json decide the version (flags first), CoordinatorFactory
// starts it and falls back from V2 to V1 when V2 cannot start.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../config/config-error.js';
import { loadCfnConfig } from '../config/cfn-config.js';
import type { CoordinationConfig } from '../config/cfn-config.js';
import { CoordinatorFactory, CoordinatorStartError } from '../coordination/factory/coordinator-factory.js';
import type { FactoryLogger } from '../coordination/factory/coordinator-factory.js';
import type { Coordinator } from '../coordination/types.js';
import type { EventBus } from '../coordination/v1/event-bus.js';
import { decideRunVersion } from '../coordination/version/decide-version.js';
import type { VersionDecision } from '../coordination/version/decide-version.js';
import type { Logger } from '../observability/logger.js';
import { PERFORMANCE_LIMITS, V2_DEFAULTS } from './defaults.js';
import type { RunOptions } from './run-options.js';

export interface CoordinatorContext {
  logger: Logger;
  env: NodeJS.ProcessEnv;
  /** The one user-facing line when V2 falls back to V1. */
  onUserMessage?: (line: string) => void;
  /** Receives the coordinators' and the fallback's events (default: a new one). */
  bus?: EventBus;
}

export interface FallbackInfo {
  from: 'v2';
  to: 'v1';
  reason: string;
  /** From the V2 attempt's start to V1 started. */
  elapsedMs: number;
}

export interface ObtainedCoordinator {
  coordinator: Coordinator;
  /** Already start()ed. */
  started: true;
  decision: VersionDecision;
  fallback?: FallbackInfo;
}

/** No coordinator could start for this run (exit code 3): the one-line reason and the decision that led there. */
export class RunCoordinatorUnavailableError extends Error {
  constructor(
    message: string,
    readonly version: 'v1' | 'v2',
    readonly reason: string,
    readonly decision: VersionDecision,
  ) {
    super(message);
    this.name = 'RunCoordinatorUnavailableError';
  }
}

/** The coordination section: --config FILE (which must exist), else ./cfn.config.json (or its alias claude-flow.config.json) when present. */
export function loadCoordinationConfig(configFile: string | undefined): { coordination: CoordinationConfig; file: string | undefined } {
  if (configFile === undefined) return loadCfnConfig();
  const file = resolve(configFile);
  if (!existsSync(file)) throw new ConfigError(file, '', 'file not found (given with --config)');
  return loadCfnConfig(file);
}

/**
 * Creates and starts the coordinator for a run. Rejects with ConfigError or
 * InvalidVersionSettingError (bad settings) or CoordinatorStartError (none could start).
 */
export async function obtainCoordinator(o: RunOptions, ctx: CoordinatorContext): Promise<ObtainedCoordinator> {
  const { coordination, file } = loadCoordinationConfig(o.configFile);
  const decision = decideRunVersion(o, ctx.env, coordination, file);
  // The user line says it once; the log keeps the details at info so the
  // default log level does not print the same news twice.
  const logger: FactoryLogger = {
    warn: (obj, msg) => (ctx.onUserMessage ? ctx.logger.info(obj, msg) : ctx.logger.warn(obj, msg)),
  };
  const memoryPath = o.memoryPath ?? nonEmpty(ctx.env.CFN_MEMORY_PATH);
  const created = await CoordinatorFactory.create({
    id: o.swarmId,
    decision,
    env: ctx.env,
    // cfn.config.json beats the shipped v2-config.json defaults.
    coordination: { fallbackEnabled: V2_DEFAULTS.fallbackEnabled, fallbackTimeout: V2_DEFAULTS.fallbackTimeoutMs, ...coordination },
    configFile: file,
    ...(o.noFallback ? { fallbackEnabled: false } : {}),
    logger,
    ...(ctx.bus ? { bus: ctx.bus } : {}),
    ...(ctx.onUserMessage ? { onUserMessage: ctx.onUserMessage } : {}),
    v1: { ...(memoryPath !== undefined ? { memoryPath } : {}), maxAgents: PERFORMANCE_LIMITS.v1.maxAgents },
    v2: { env: ctx.env, logger: ctx.logger, ...(o.shmPath !== undefined ? { shmPath: o.shmPath } : {}) },
  }).catch((err: unknown) => {
    if (!(err instanceof CoordinatorStartError)) throw err;
    const message =
      err.version === 'v2' && o.noFallback ? `V2 coordinator failed to start: ${err.reason} (--no-fallback: not falling back to V1)` : err.message;
    throw new RunCoordinatorUnavailableError(message, err.version, err.reason, decision);
  });
  return {
    coordinator: created.coordinator,
    started: true,
    decision,
    ...(created.fallback
      ? { fallback: { from: 'v2' as const, to: 'v1' as const, reason: created.fallback.reason, elapsedMs: created.fallback.elapsedMs } }
      : {}),
  };
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s;
}
