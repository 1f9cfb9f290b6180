// cfn.config.json (in the working directory, optional): the user's
// coordination choices. Other top-level keys belong to other tools and pass
// through; inside `coordination` an unknown key is a typo and refused.
// claude-flow.config.json, the design's name for it, is read when there is no
// cfn.config.json.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parseConfig } from './config-error.js';
import { readOptionalJsonFile } from './read-json-file.js';

export const coordinationConfigSchema = z.strictObject({
  version: z.enum(['v1', 'v2', 'auto']).optional(),
  v2RolloutPercentage: z.number().min(0).max(100).optional(),
  fallbackEnabled: z.boolean().optional(),
  /** Milliseconds V2 gets to start before the factory falls back. */
  fallbackTimeout: z.number().int().min(0).optional(),
});
export type CoordinationConfig = z.infer<typeof coordinationConfigSchema>;

export const cfnConfigSchema = z.looseObject({
  coordination: coordinationConfigSchema.optional(),
});

export const CFN_CONFIG_FILE = 'cfn.config.json';
/** The design's file name, read when CFN_CONFIG_FILE is absent. */
export const CFN_CONFIG_FILE_ALIAS = 'claude-flow.config.json';

export interface LoadedCfnConfig {
  /** The file it came from, or undefined when there is none. */
  file: string | undefined;
  coordination: CoordinationConfig;
}

/** The config file of `dir`: cfn.config.json, else claude-flow.config.json when only that one exists. */
export function cfnConfigFile(dir: string = process.cwd()): string {
  const file = join(dir, CFN_CONFIG_FILE);
  const alias = join(dir, CFN_CONFIG_FILE_ALIAS);
  return !existsSync(file) && existsSync(alias) ? alias : file;
}

/** Loads a cfn.config.json (default: the working directory's); a missing file means no choices. */
export function loadCfnConfig(file: string = cfnConfigFile()): LoadedCfnConfig {
  const data = readOptionalJsonFile(file);
  if (data === undefined) return { file: undefined, coordination: {} };
  const parsed = parseConfig(cfnConfigSchema, data, file);
  return { file, coordination: parsed.coordination ?? {} };
}
