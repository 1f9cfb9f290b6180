// Where a swarm's records live in an S3-compatible store: the bucket, then
// spec.results.s3.prefix, then the one layout of stored-result.ts. The sink
// and the source both build keys here, so they never disagree.
import type { z } from 'zod';
import type { s3Results } from '../api/swarm.js';
import { resultDir, resultKey, type ResultScope } from './stored-result.js';

/** spec.results.s3 after the CRD defaults (region, forcePathStyle, key names). */
export type S3ResultsConfig = z.output<typeof s3Results>;

/** The key prefix of one swarm run: `<prefix><namespace>/<name>/<uid>/`. */
export const s3RunPrefix = (prefix: string | undefined, scope: ResultScope): string => `${prefix ?? ''}${resultDir(scope)}`;

/** The object key of one agent's record: `<prefix><namespace>/<name>/<uid>/<index>.json`. */
export const s3ObjectKey = (prefix: string | undefined, scope: ResultScope, index: number): string => `${prefix ?? ''}${resultKey(scope, index)}`;

/** status.results.location: `s3://<bucket>/<prefix><namespace>/<name>/<uid>/`. */
export const s3Location = (config: Pick<S3ResultsConfig, 'bucket' | 'prefix'>, scope: ResultScope): string =>
  `s3://${config.bucket}/${s3RunPrefix(config.prefix, scope)}`;
