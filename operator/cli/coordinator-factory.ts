// The one place `cfn run` obtains its coordinator: flags, environment and
// cfn.config.json decide the version (flags first), CoordinatorFactory
// starts it and falls back from V2 to V1 when V2 cannot start.
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { ConfigError } from '../config/config-error.js';
import { CFN_CONFIG_FILE, loadCfnConfig } from '../config/cfn-config.js';
import type { CoordinationConfig } from '../config/cfn-config.js';
import { CoordinatorFactory, CoordinatorStartError } from '../coordination/factory/coordinator-factory.js';
import type { FactoryLogger } from '../coordination/factory/coordinator-factory.js';
import type { ICoordinator, Topology } from '../coordination/types.js';
import type { EventBus } from '../coordination/v1/event-bus.js';
import { DEFAULT_SHM_PATH } from '../coordination/v2/bash-coordinator.js';
import { detectVersion } from '../coordination/version/detect-version.js';
import type { VersionDecision } from '../coordination/version/detect-version.js';
import { v2Preflight } from '../coordination/version/v2-preflight.js';
import type { Logger } from '../observability/logger.js';
import { AUTO_FLAT_MAX_AGENTS, PERFORMANCE_LIMITS, V2_DEFAULTS } from './defaults.js';
import type { RunOptions, TopologyChoice } from './run-options.js';

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
  coordinator: ICoordinator;
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

export function resolveTopology(choice: TopologyChoice, agents: number): Topology {
  if (choice !== 'auto') return choice;
  return agents > AUTO_FLAT_MAX_AGENTS ? 'hybrid' : 'flat';
}

/** The coordination section: --config FILE (which must exist), else ./cfn.config.json (or its alias claude-flow.config.json) when present. */
export function loadCoordinationConfig(configFile: string | undefined): { coordination: CoordinationConfig; file: string | undefined } {
  if (configFile === undefined) return loadCfnConfig();
  const file = resolve(configFile);
  if (!existsSync(file)) throw new ConfigError(file, '', 'file not found (given with --config)');
  return loadCfnConfig(file);
}

function withoutVersionEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { COORDINATION_VERSION: _v, V2_ROLLOUT_PERCENTAGE: _r, ...rest } = env;
  return rest;
}

/**
 * The version for a run. Flags beat everything: --version v1|v2 decides alone,
 * --version auto runs the V2 preflight, --rollout-percentage replaces the env's
 * and the config's rollout; otherwise detectVersion (env > config > rollout > auto),
 * where no version anywhere means auto.
 */
export function decideVersion(o: RunOptions, env: NodeJS.ProcessEnv, coordination: CoordinationConfig, configFile: string | undefined): VersionDecision {
  if (o.version === 'v1' || o.version === 'v2') return { version: o.version, reason: `--version=${o.version}` };
  const shmPath = o.shmPath ?? env.CFN_SHM_PATH ?? DEFAULT_SHM_PATH;
  // The bash V2 would run: the one on the run's PATH, not necessarily on this process's.
  const preflight = () => {
    const bash = bashOnPath(env.PATH);
    return bash ? v2Preflight({ shmPath, bash }) : { ok: false, reason: `bash not found on PATH=${env.PATH ?? '(unset)'}` };
  };
  const { version: _configured, v2RolloutPercentage: _rollout, ...rest } = coordination;
  if (o.version === 'auto') {
    const d = detectVersion({ id: o.swarmId, env: withoutVersionEnv(env), coordination: { ...rest, version: 'auto' }, configFile, preflight });
    return { version: d.version, reason: d.reason.replace(/^auto:/, '--version=auto:') };
  }
  if (o.rolloutPercentage !== undefined) {
    const d = detectVersion({ id: o.swarmId, env: withoutVersionEnv(env), coordination: { ...rest, v2RolloutPercentage: o.rolloutPercentage }, configFile });
    return { version: d.version, reason: `--rollout-percentage ${d.reason.replace(/^rollout /, '')}` };
  }
  // Nothing configured: the CLI's default is auto (V2 on a machine that can run
  // it, as `cfn run` always did), not the operator's conservative v1.
  const d = detectVersion({ id: o.swarmId, env, coordination: { ...coordination, version: coordination.version ?? 'auto' }, configFile: configFile ?? CFN_CONFIG_FILE, preflight });
  return coordination.version === undefined && d.reason.startsWith('auto:') ? { version: d.version, reason: `cfn run default ${d.reason}` } : d;
}

/**
 * Creates and starts the coordinator for a run. Rejects with ConfigError or
 * InvalidVersionSettingError (bad settings) or CoordinatorStartError (none could start).
 */
export async function obtainCoordinator(o: RunOptions, ctx: CoordinatorContext): Promise<ObtainedCoordinator> {
  const { coordination, file } = loadCoordinationConfig(o.configFile);
  const decision = decideVersion(o, ctx.env, coordination, file);
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

function bashOnPath(pathEnv: string | undefined): string | undefined {
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'bash');
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s;
}
