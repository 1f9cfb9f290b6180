// Which coordinator runs a swarm, and why; and which topology. The one module
// that decides: a Swarm in the cluster (decideSwarmVersion: spec > operator
// COORDINATION_VERSION > RolloutPolicy > operator default), `cfn run`
// (decideRunVersion: flags, then detectVersion) and the library
// (detectVersion: COORDINATION_VERSION env > the config file's
// coordination.version (v1|v2) > rollout percentage (env, then config), by a
// stable bucket of the id > `auto` (V2 preflight) > v1).
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { FLAT_MAX_AGENTS, swarmAgents } from '../../api/swarm.js';
import type { Swarm } from '../../api/swarm.js';
import type { CoordinationVersion } from '../types.js';
import { DEFAULT_SHM_PATH } from '../v2/bash-coordinator.js';
import type { CoordinationConfig } from '../../config/cfn-config.js';
import { CFN_CONFIG_FILE } from '../../config/cfn-config.js';
import { ConfigError } from '../../config/config-error.js';
import { rolloutBucket } from './rollout-bucket.js';
import { v2Preflight } from './v2-preflight.js';
import type { PreflightFn } from './v2-preflight.js';

export interface DetectVersionInput {
  /** The objective or swarm id: decides the rollout bucket. */
  id: string;
  /** The `coordination` section of cfn.config.json (already validated). */
  coordination?: CoordinationConfig;
  /** Where `coordination` came from, for messages; default cfn.config.json. */
  configFile?: string;
  /** Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Used only for `auto`; default: the cheap TypeScript preflight. */
  preflight?: PreflightFn;
}

export interface VersionDecision {
  version: CoordinationVersion;
  reason: string;
  /** Set when a RolloutPolicy routed the swarm. */
  rollout?: { policy: string; bucket: number; percentage: number; generation?: number; step?: number };
}

/** The Swarm API's layout: flat = one shard, hybrid = two or more shards (coordinator pods) under the operator. */
export type SwarmTopology = 'flat' | 'hybrid';

/** `auto`: flat up to FLAT_MAX_AGENTS agents, hybrid above. */
export function resolveTopology(choice: SwarmTopology | 'auto', agents: number): SwarmTopology {
  if (choice !== 'auto') return choice;
  return agents > FLAT_MAX_AGENTS ? 'hybrid' : 'flat';
}

/** A Swarm's topology: its spec's, `auto` resolved by its agent count. */
export const resolveSwarmTopology = (swarm: Swarm): SwarmTopology => resolveTopology(swarm.spec.topology, swarmAgents(swarm.spec));

export interface VersionPolicy {
  /** The operator's COORDINATION_VERSION, when set. */
  operatorVersion?: CoordinationVersion;
  /** A RolloutPolicy's routing, when one applies to the swarm. */
  rollout?: (swarm: Swarm) => VersionDecision | undefined;
  /** Used when nothing else decides. */
  defaultVersion: CoordinationVersion;
}

/** A new Swarm's version, decided once: the caller writes it to status and never asks again for that swarm. */
export function decideSwarmVersion(swarm: Swarm, policy: VersionPolicy): VersionDecision {
  const wanted = swarm.spec.coordination.version;
  if (wanted !== 'auto') return { version: wanted, reason: `spec.coordination.version=${wanted}` };
  if (policy.operatorVersion) return { version: policy.operatorVersion, reason: `operator COORDINATION_VERSION=${policy.operatorVersion}` };
  const routed = policy.rollout?.(swarm);
  if (routed) return routed;
  return { version: policy.defaultVersion, reason: `operator default ${policy.defaultVersion} (no RolloutPolicy)` };
}

export class InvalidVersionSettingError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`${variable}: ${detail}`);
    this.name = 'InvalidVersionSettingError';
  }
}

function envValue(env: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function parsePercentage(raw: string, variable: string): number {
  // Number('') and Number(' ') are 0; envValue already dropped blanks.
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || n > 100) {
    throw new InvalidVersionSettingError(variable, `expected a number from 0 to 100, got ${JSON.stringify(raw)}`);
  }
  return n;
}

export function detectVersion(input: DetectVersionInput): VersionDecision {
  const env = input.env ?? process.env;
  const coordination = input.coordination ?? {};
  const configFile = input.configFile ?? CFN_CONFIG_FILE;

  const forced = envValue(env, 'COORDINATION_VERSION');
  if (forced !== undefined) {
    if (forced !== 'v1' && forced !== 'v2') {
      throw new InvalidVersionSettingError('COORDINATION_VERSION', `expected v1 or v2, got ${JSON.stringify(forced)}`);
    }
    return { version: forced, reason: `COORDINATION_VERSION=${forced}` };
  }

  // The config is normally validated by loadCfnConfig; re-check the one
  // field we branch on so a hand-built object cannot slip an odd value through.
  const configured = coordination.version;
  if (configured !== undefined && configured !== 'v1' && configured !== 'v2' && configured !== 'auto') {
    throw new ConfigError(configFile, 'coordination.version', `expected one of "v1" | "v2" | "auto", got ${JSON.stringify(configured)}`);
  }
  if (configured === 'v1' || configured === 'v2') {
    return { version: configured, reason: `coordination.version=${configured} (${configFile})` };
  }

  const envRollout = envValue(env, 'V2_ROLLOUT_PERCENTAGE');
  let rollout: { pct: number; source: string } | undefined;
  if (envRollout !== undefined) {
    rollout = { pct: parsePercentage(envRollout, 'V2_ROLLOUT_PERCENTAGE'), source: 'V2_ROLLOUT_PERCENTAGE' };
  } else if (coordination.v2RolloutPercentage !== undefined) {
    const pct = coordination.v2RolloutPercentage;
    if (typeof pct !== 'number' || !Number.isFinite(pct) || pct < 0 || pct > 100) {
      throw new ConfigError(configFile, 'coordination.v2RolloutPercentage', `expected a number from 0 to 100, got ${JSON.stringify(pct)}`);
    }
    rollout = { pct, source: 'coordination.v2RolloutPercentage' };
  }
  if (rollout) {
    const bucket = rolloutBucket(input.id);
    return bucket < rollout.pct
      ? { version: 'v2', reason: `rollout ${rollout.pct}%: bucket ${bucket} < ${rollout.pct}` }
      : { version: 'v1', reason: `rollout ${rollout.pct}%: bucket ${bucket} >= ${rollout.pct}` };
  }

  if (configured === 'auto') {
    const result = (input.preflight ?? v2Preflight)();
    return result.ok
      ? { version: 'v2', reason: `auto: V2 preflight passed (${result.reason})` }
      : { version: 'v1', reason: `auto: V2 preflight failed (${result.reason})` };
  }

  return { version: 'v1', reason: 'default: v1 (no version, rollout or auto configured)' };
}

/** What `cfn run`'s flags say about the version. */
export interface RunVersionFlags {
  swarmId: string;
  /** --version; undefined when not given. */
  version?: CoordinationVersion | 'auto' | undefined;
  /** --rollout-percentage. */
  rolloutPercentage?: number | undefined;
  /** --shm-path. */
  shmPath?: string | undefined;
}

function withoutVersionEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { COORDINATION_VERSION: _v, V2_ROLLOUT_PERCENTAGE: _r, ...rest } = env;
  return rest;
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

/**
 * The version for a `cfn run`. Flags beat everything: --version v1|v2 decides alone,
 * --version auto runs the V2 preflight, --rollout-percentage replaces the env's
 * and the config's rollout; otherwise detectVersion (env > config > rollout > auto),
 * where no version anywhere means auto.
 */
export function decideRunVersion(
  o: RunVersionFlags,
  env: NodeJS.ProcessEnv,
  coordination: CoordinationConfig,
  configFile: string | undefined,
): VersionDecision {
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
  const d = detectVersion({
    id: o.swarmId,
    env,
    coordination: { ...coordination, version: coordination.version ?? 'auto' },
    configFile: configFile ?? CFN_CONFIG_FILE,
    preflight,
  });
  return coordination.version === undefined && d.reason.startsWith('auto:') ? { version: d.version, reason: `cfn run default ${d.reason}` } : d;
}
