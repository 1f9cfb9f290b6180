// claude-flow.config.json (in the working directory, optional): the user's
// coordination choices. Other top-level keys belong to other tools and pass
// through; inside `coordination` an unknown key is a typo and refused.
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

export const claudeFlowConfigSchema = z.looseObject({
  coordination: coordinationConfigSchema.optional(),
});

export const CLAUDE_FLOW_CONFIG_FILE = 'claude-flow.config.json';

export interface LoadedClaudeFlowConfig {
  /** The file it came from, or undefined when there is none. */
  file: string | undefined;
  coordination: CoordinationConfig;
}

/** Loads `claude-flow.config.json` from `dir` (default: cwd); a missing file means no choices. */
export function loadClaudeFlowConfig(file: string = join(process.cwd(), CLAUDE_FLOW_CONFIG_FILE)): LoadedClaudeFlowConfig {
  const data = readOptionalJsonFile(file);
  if (data === undefined) return { file: undefined, coordination: {} };
  const parsed = parseConfig(claudeFlowConfigSchema, data, file);
  return { file, coordination: parsed.coordination ?? {} };
}
