// One agent's result as the sinks store it and `cfn results` reads it back:
// the agent's final response plus which coordinator stored it. Readers parse
// every record with this schema (agents wrote the output; nothing is believed
// unchecked) and count what does not parse instead of failing on it.
import { z } from 'zod';

export const storedResult = z.object({
  agentId: z.string().max(64),
  index: z.number().int().min(0),
  status: z.enum(['completed', 'failed']),
  exitCode: z.number().int().nullable(),
  attempts: z.number().int().min(0),
  durationMs: z.number().min(0),
  output: z.string(),
  outputBytes: z.number().int().min(0),
  outputTruncated: z.boolean(),
  error: z.string().nullable(),
  /** The coordinator version and pod that stored the record. */
  version: z.enum(['v1', 'v2']),
  pod: z.string().max(253).optional(),
  storedAt: z.string(),
});
export type StoredResult = z.output<typeof storedResult>;

/** Identifies a swarm run in a sink: results of different runs never mix. */
export interface ResultScope {
  namespace: string;
  name: string;
  uid: string;
}

/**
 * The one layout every sink uses, relative to its root (the volume's mount,
 * or bucket + prefix): `<namespace>/<name>/<uid>/<index>.json`, one record
 * per agent index. A later record of an index replaces the earlier one, so
 * exactly one (the final) survives by construction.
 */
export const resultDir = (s: ResultScope): string => `${s.namespace}/${s.name}/${s.uid}/`;
export const resultKey = (s: ResultScope, index: number): string => `${resultDir(s)}${index}.json`;
/** A record's file or object name, parsed back to its index (undefined: not a record). */
export const indexOfKey = (base: string): number | undefined => {
  const m = /^(0|[1-9][0-9]{0,8})\.json$/.exec(base);
  return m ? Number(m[1]) : undefined;
};

/** An agent's final response as a record: with the coordinator version (and pod) that stores it. */
export const toStoredResult = (r: Omit<StoredResult, 'version' | 'pod' | 'storedAt'>, version: StoredResult['version'], pod?: string): StoredResult => ({
  agentId: r.agentId,
  index: r.index,
  status: r.status,
  exitCode: r.exitCode,
  attempts: r.attempts,
  durationMs: r.durationMs,
  output: r.output,
  outputBytes: r.outputBytes,
  outputTruncated: r.outputTruncated,
  error: r.error,
  version,
  ...(pod ? { pod } : {}),
  storedAt: new Date().toISOString(),
});
