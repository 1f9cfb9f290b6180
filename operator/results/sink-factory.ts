// The sink a coordinator stores results in, from the Swarm's spec.results:
// a claim or an emptyDir is a directory at the pod's results mount
// (CFN_RESULTS_DIR, /results); s3 is an object store.
import { POD_NAME_PREFIX_MAX } from '../api/common.js';
import { DirectorySink } from './directory-sink.js';
import { resultDir } from './stored-result.js';
import type { SwarmSpec } from '../api/swarm.js';
import type { ResultSink } from './result-sink.js';
import type { ResultScope } from './stored-result.js';

export type ResultsSpec = SwarmSpec['results'];

/** Where the coordinator pod mounts the results volume (CFN_RESULTS_DIR). */
export const RESULTS_MOUNT_PATH = '/results';

/**
 * The claim the operator creates for a Swarm: <swarm>-results (with the name's
 * share of derived names); for shard `shard` of a swarm with more than one
 * shard, <swarm>-results-<shard> (a claim of a local volume is bound to one
 * node, so each shard has its own). `shard` undefined: a single-shard swarm.
 */
export const createdClaimName = (swarmName: string, shard?: number): string =>
  `${swarmName.slice(0, POD_NAME_PREFIX_MAX)}-results${shard === undefined ? '' : `-${shard}`}`;

/** The claim a Swarm's (or its shard's) results go to: spec.results.claimName (every shard mounts it), else the one the operator creates. */
export const resultsClaimName = (swarmName: string, spec: ResultsSpec, shard?: number): string => spec.claimName ?? createdClaimName(swarmName, shard);

export interface SinkContext {
  /** The mounted results volume (default RESULTS_MOUNT_PATH). */
  resultsDir?: string;
  /** This coordinator pod, named in an emptyDir location (gone with it). */
  pod?: string;
  /** Where the S3 credentials Secret is mounted (default S3_CREDENTIALS_MOUNT_PATH). */
  s3CredentialsDir?: string;
  /** The shard of a swarm with more than one shard (its own claim); undefined for a single-shard swarm. */
  shard?: number;
}

/** status.results.location of a directory sink: "pvc://<claim>/<ns>/<name>/<uid>/" or "emptyDir://<pod>/<ns>/<name>/<uid>/". */
export function directoryLocation(spec: ResultsSpec, scope: ResultScope, pod: string | undefined, shard?: number): string {
  return spec.type === 'emptyDir'
    ? `emptyDir://${pod ?? 'coordinator'}/${resultDir(scope)}`
    : `pvc://${resultsClaimName(scope.name, spec, shard)}/${resultDir(scope)}`;
}

export async function createSink(spec: ResultsSpec, scope: ResultScope, ctx: SinkContext = {}): Promise<ResultSink> {
  switch (spec.type) {
    case 'persistentVolumeClaim':
    case 'emptyDir':
      return new DirectorySink({
        root: ctx.resultsDir ?? RESULTS_MOUNT_PATH,
        scope,
        type: spec.type,
        location: directoryLocation(spec, scope, ctx.pod, ctx.shard),
      });
    case 's3': {
      if (!spec.s3) throw new Error('results.type s3 needs results.s3');
      // Loaded only here: a coordinator that stores elsewhere never loads the S3 client.
      const { openS3Sink } = await import('./s3-sink.js');
      return openS3Sink(spec.s3, scope, ctx.s3CredentialsDir);
    }
  }
}
