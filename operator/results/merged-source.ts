// The records of a sharded swarm as one set: every shard stores its agents'
// records in its own store (a claim each), under the same global indexes, so
// `cfn results` reads them all and merges them by index. An index held by two
// stores (a shard's agent stored twice across a move) is returned once: the
// newer record by its storedAt wins, and such duplicates are counted.
import type { ResultSource, UnreadableRecord } from './result-sink.js';
import type { StoredResult } from './stored-result.js';

/** Stores read at once (each a reader pod on the cluster). */
export const MERGE_CONCURRENCY = 4;

export interface MergedRead {
  results: StoredResult[];
  unreadable: UnreadableRecord[];
  /** Records dropped because another store held a newer record of the same index. */
  duplicates: number;
}

/** One store's records, named for the keys of its unreadable records. */
export interface NamedRead {
  where: string;
  results: readonly StoredResult[];
  unreadable: readonly UnreadableRecord[];
}

const time = (r: StoredResult): number => {
  const t = Date.parse(r.storedAt);
  return Number.isNaN(t) ? -Infinity : t;
};

/**
 * The stores' records ascending by index, each index once: the newer record
 * by storedAt, on a tie the one of the earlier store (a stable answer).
 * Unreadable records keep their store's name in their key.
 */
export function mergeReads(reads: readonly NamedRead[]): MergedRead {
  const byIndex = new Map<number, StoredResult>();
  let duplicates = 0;
  for (const read of reads) {
    for (const r of read.results) {
      const held = byIndex.get(r.index);
      if (held) {
        duplicates++;
        if (time(r) <= time(held)) continue;
      }
      byIndex.set(r.index, r);
    }
  }
  const results = [...byIndex.values()].sort((a, b) => a.index - b.index);
  const unreadable = reads.flatMap((read) => read.unreadable.map((u) => ({ key: reads.length > 1 ? `${read.where}: ${u.key}` : u.key, reason: u.reason })));
  return { results, unreadable, duplicates };
}

export interface NamedSource {
  where: string;
  source: ResultSource;
}

/**
 * A source over several stores: read MERGE_CONCURRENCY at a time, merged with
 * mergeReads. A store that cannot be read fails the whole read (no partial
 * answer), as a single store does.
 */
export class MergedSource implements ResultSource {
  constructor(
    private readonly sources: readonly NamedSource[],
    private readonly concurrency = MERGE_CONCURRENCY,
  ) {}

  async read(): Promise<MergedRead> {
    const reads: NamedRead[] = new Array<NamedRead>(this.sources.length);
    let next = 0;
    let failed = false;
    const worker = async () => {
      for (let i = next++; i < this.sources.length && !failed; i = next++) {
        const { where, source } = this.sources[i]!;
        try {
          reads[i] = { where, ...(await source.read()) };
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.concurrency, this.sources.length)) }, worker));
    return mergeReads(reads);
  }

  /**
   * Agent INDEX's record: the store of PREFERRED (the shard whose range holds
   * it) first, the others only when it has none, so one agent costs one
   * store's read.
   */
  async find(index: number, preferred: number | undefined): Promise<{ result: StoredResult | undefined; read: MergedRead }> {
    const all = this.sources.map((_, i) => i);
    const order = preferred !== undefined && preferred >= 0 && preferred < this.sources.length ? [preferred, ...all.filter((i) => i !== preferred)] : all;
    const reads: NamedRead[] = [];
    for (const i of order) {
      const { where, source } = this.sources[i]!;
      reads.push({ where, ...(await source.read()) });
      const merged = mergeReads(reads);
      const result = merged.results.find((r) => r.index === index);
      // Only the shard whose range holds an index runs that agent, so its own store is the one that holds it.
      if (result) return { result, read: merged };
    }
    return { result: undefined, read: mergeReads(reads) };
  }
}
