// Picks and starts a swarm's coordinator: detectVersion decides, V2 gets
// `fallbackTimeout` to start and pass a health check, and when it cannot, V1
// takes over (unless fallback is disabled): one warning in the log, one
// `coordination:fallback` event, one line for the user.
import type { CoordinationConfig } from '../../config/cfn-config.js';
import { loadCfnConfig } from '../../config/cfn-config.js';
import type { CoordinationVersion, Coordinator } from '../types.js';
import { BashCoordinator } from '../v2/bash-coordinator.js';
import type { BashCoordinatorOptions } from '../v2/bash-coordinator.js';
import { EventBus } from '../v1/event-bus.js';
import { SwarmCoordinator } from '../v1/swarm-coordinator.js';
import type { SwarmCoordinatorOptions } from '../v1/swarm-coordinator.js';
import { detectVersion } from '../version/decide-version.js';
import type { VersionDecision } from '../version/decide-version.js';
import type { PreflightFn } from '../version/v2-preflight.js';

export const DEFAULT_FALLBACK_TIMEOUT_MS = 5000;

/** The part of a logger the factory uses (a pino Logger fits). */
export interface FactoryLogger {
  warn(obj: object, msg: string): void;
}

export interface CoordinatorFactoryConfig {
  /** Objective or swarm id: decides the rollout bucket. */
  id: string;
  /**
   * An explicit choice that beats detection (a library caller's own flag),
   * e.g. `{ version: 'v1', source: '--engine' }` gives reason `--engine=v1`.
   * `cfn run` passes its whole `decision` instead.
   */
  explicit?: { version: CoordinationVersion; source: string };
  /** Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** cfn.config.json's coordination section; default: loaded from the working directory. */
  coordination?: CoordinationConfig;
  configFile?: string;
  /** Override coordination.fallbackEnabled (default true). */
  fallbackEnabled?: boolean;
  /** Override coordination.fallbackTimeout, in ms (default 5000). */
  fallbackTimeoutMs?: number;
  /** Shared by V1 and the fallback event; default: a new one. */
  bus?: EventBus;
  logger?: FactoryLogger;
  /** Receives the one user-facing line when V2 falls back to V1. */
  onUserMessage?: (line: string) => void;
  v1?: SwarmCoordinatorOptions;
  v2?: BashCoordinatorOptions;
  /** For `auto`: the V2 preflight (default: the cheap TypeScript one). */
  preflight?: PreflightFn;
  /** A decision already made by the caller (a CLI with its own flag precedence); skips detection. */
  decision?: VersionDecision;
}

export interface CreatedCoordinator {
  /** Started and ready. */
  coordinator: Coordinator;
  decision: VersionDecision;
  bus: EventBus;
  /** Set when V2 was chosen but V1 runs. */
  fallback?: { reason: string; userMessage: string; /** From the V2 attempt's start to V1 started. */ elapsedMs: number };
}

export class CoordinatorStartError extends Error {
  constructor(
    readonly version: 'v1' | 'v2',
    readonly reason: string,
    hint = '',
  ) {
    super(`${version.toUpperCase()} coordinator failed to start: ${reason}${hint}`);
    this.name = 'CoordinatorStartError';
  }
}

class StartTimeoutError extends Error {}

/** Resolves with `p` or rejects after `ms`; the timer never outlives the race. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StartTimeoutError(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function message(err: unknown): string {
  if (err instanceof Error) return 'reason' in err && typeof err.reason === 'string' ? err.reason : err.message;
  return String(err);
}

export class CoordinatorFactory {
  /** Decides the version and returns a started coordinator (V1 when V2 cannot start and fallback is on). */
  static async create(config: CoordinatorFactoryConfig): Promise<CreatedCoordinator> {
    const env = config.env ?? process.env;
    let coordination = config.coordination;
    let configFile = config.configFile;
    if (coordination === undefined) {
      const loaded = loadCfnConfig();
      coordination = loaded.coordination;
      configFile ??= loaded.file;
    }
    const decision: VersionDecision = config.explicit
      ? { version: config.explicit.version, reason: `${config.explicit.source}=${config.explicit.version}` }
      : config.decision
        ? config.decision
        : detectVersion({ id: config.id, env, coordination, configFile, preflight: config.preflight });
    const bus = config.bus ?? new EventBus();
    const logger = config.logger;

    if (decision.version === 'v1') {
      return { coordinator: await CoordinatorFactory.startV1(config, bus), decision, bus };
    }

    const timeoutMs = config.fallbackTimeoutMs ?? coordination.fallbackTimeout ?? DEFAULT_FALLBACK_TIMEOUT_MS;
    const fallbackEnabled = config.fallbackEnabled ?? coordination.fallbackEnabled ?? true;
    const v2 = new BashCoordinator({ env, ...config.v2 });
    const startedAt = Date.now();
    try {
      await within(v2.start(), timeoutMs, 'V2 start');
      const health = await within(v2.healthCheck(), Math.max(1, timeoutMs - (Date.now() - startedAt)), 'V2 health check');
      if (!health.healthy) throw new Error(health.reason ?? 'health check failed');
      return { coordinator: v2, decision, bus };
    } catch (err) {
      const reason = message(err);
      await v2.stop().catch(() => undefined);
      if (!fallbackEnabled) {
        throw new CoordinatorStartError('v2', reason, ' (fallback to V1 is disabled: coordination.fallbackEnabled=false)');
      }
      logger?.warn({ reason, decision: decision.reason }, 'V2 coordinator unavailable, falling back to V1');
      bus.publish('coordination:fallback', { from: 'v2', to: 'v1', reason, timestamp: Date.now() });
      const userMessage = `V2 unavailable (${reason}), using V1 fallback`;
      config.onUserMessage?.(userMessage);
      const coordinator = await CoordinatorFactory.startV1(config, bus);
      return { coordinator, decision, bus, fallback: { reason, userMessage, elapsedMs: Date.now() - startedAt } };
    }
  }

  private static async startV1(config: CoordinatorFactoryConfig, bus: EventBus): Promise<SwarmCoordinator> {
    const v1 = new SwarmCoordinator({ ...config.v1, bus });
    try {
      await v1.start();
    } catch (err) {
      await v1.stop().catch(() => undefined);
      throw new CoordinatorStartError('v1', message(err));
    }
    return v1;
  }
}
