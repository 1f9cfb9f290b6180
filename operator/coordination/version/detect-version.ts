// Which coordinator runs a swarm. Priority: COORDINATION_VERSION env > the
// config file's coordination.version (v1|v2) > rollout percentage (env, then
// config), by a stable bucket of the swarm id > `auto` (V2 preflight) > v1.
import type { CoordinationVersion } from '../types.js';
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
