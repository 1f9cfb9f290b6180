// Where a coordinator stores each agent's result as it arrives (a directory on
// the swarm's volume, or an S3-compatible bucket), and how `cfn results` reads
// them back. Implementations: directory-sink.ts, s3-sink.ts.
import type { StoredResult } from './stored-result.js';

/** Indexes start..end-1 (a shard's). */
export interface IndexRange {
  start: number;
  end: number;
}

export const inRange = (index: number, range: IndexRange | undefined): boolean => !range || (index >= range.start && index < range.end);

export type ResultsType = 'persistentVolumeClaim' | 's3' | 'emptyDir';

export interface ResultSink {
  readonly type: ResultsType;
  /** Where the records are, for status.results.location. */
  readonly location: string;
  /**
   * Stores one agent's record at resultKey(scope, index), replacing an
   * earlier one of that index. Resolves once the record is durable; rejects
   * (a full volume, an unreachable store) with nothing half-written visible.
   */
  put(record: StoredResult): Promise<{ bytes: number }>;
  /**
   * The records already stored in the scope (an earlier coordinator's of the
   * same run), with their size: a replacement coordinator counts them in
   * status.results. Optional: without it the count starts from the previous
   * status.results. `range`: one shard's indexes only (start..end-1), in a
   * sink the swarm's other shards may share.
   */
  inventory?(range?: IndexRange): Promise<Array<{ index: number; bytes: number }>>;
  /** Releases what the sink holds open (an S3 client's connections). */
  close?(): void;
}

/** A record that did not parse, counted and reported, never returned as a result. */
export interface UnreadableRecord {
  key: string;
  reason: string;
}

export interface ResultSource {
  /**
   * Every record of the scope, ascending by index, and the ones that did not
   * parse; over several stores (a sharded swarm's claims) also how many
   * records lost to a newer one of the same index.
   */
  read(): Promise<{ results: StoredResult[]; unreadable: UnreadableRecord[]; duplicates?: number }>;
}
