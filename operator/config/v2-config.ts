// config/v2-config.json: the defaults of `cfn run` (its flags override them).
// The operator does not read this file: a Swarm's defaults are its CRD's.
// Strict: an unknown key is a typo, not data.
import { z } from 'zod';
import { parseConfig } from './config-error.js';
import { shippedConfigPath } from '../util/package-root.js';
import { readJsonFile } from './read-json-file.js';

const positiveInt = z.number().int().min(1);

export const v2ConfigSchema = z.strictObject({
  concurrency: positiveInt,
  agentTimeoutSeconds: z.number().positive(),
  timeoutSeconds: z.number().positive(),
  retries: z.number().int().min(0).max(20),
  maxOutputBytes: positiveInt,
  fallbackEnabled: z.boolean(),
  fallbackTimeoutMs: z.number().int().min(0),
});
export type V2Config = z.infer<typeof v2ConfigSchema>;

export const V2_CONFIG_FILE = 'v2-config.json';

/** Loads and validates a v2-config.json (default: the one shipped in config/). */
export function loadV2Config(file: string = shippedConfigPath(V2_CONFIG_FILE)): V2Config {
  return parseV2Config(readJsonFile(file), file);
}

export function parseV2Config(data: unknown, file: string): V2Config {
  return parseConfig(v2ConfigSchema, data, file);
}
