// A sharded swarm's records as one set: every shard's store read, merged by
// index, each index once (the newer record of a duplicate), unreadable
// records kept with their store's name; one agent found in its shard's store.
import { describe, expect, it } from '@jest/globals';
import { MergedSource, mergeReads } from '../../../operator/results/merged-source.js';
import { record } from './records.js';
import type { ResultSource } from '../../../operator/results/result-sink.js';
import type { StoredResult } from '../../../operator/results/stored-result.js';

const at = (index: number, storedAt: string, over: Partial<StoredResult> = {}) => record(index, { storedAt, ...over });
const T1 = '2026-12-04T12:00:00.000Z';
const T2 = '2026-12-04T12:00:05.000Z';

/** A store that counts its reads, or fails. */
class Store implements ResultSource {
  reads = 0;
  constructor(
    private readonly results: StoredResult[],
    private readonly unreadable: Array<{ key: string; reason: string }> = [],
    private readonly fail?: Error,
  ) {}
  async read() {
    this.reads++;
    if (this.fail) throw this.fail;
    return { results: this.results, unreadable: this.unreadable };
  }
}

describe('mergeReads', () => {
  it('ascending by index over the stores, whatever order they come in', () => {
    const m = mergeReads([
      { where: 'pvc://sw-results-1/', results: [at(3, T1), at(4, T1), at(5, T1)], unreadable: [] },
      { where: 'pvc://sw-results-0/', results: [at(0, T1), at(1, T1), at(2, T1)], unreadable: [] },
    ]);
    expect(m.results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(m.duplicates).toBe(0);
    expect(m.unreadable).toEqual([]);
  });

  it('an index two stores hold: once, the newer record by storedAt, counted', () => {
    const older = at(2, T1, { pod: 'sw-v2-1-s0', output: 'old\n' });
    const newer = at(2, T2, { pod: 'sw-v2-1-s1', output: 'new\n' });
    for (const reads of [
      [
        { where: 'a', results: [older], unreadable: [] },
        { where: 'b', results: [newer], unreadable: [] },
      ],
      [
        { where: 'b', results: [newer], unreadable: [] },
        { where: 'a', results: [older], unreadable: [] },
      ],
    ]) {
      const m = mergeReads(reads);
      expect(m.results).toEqual([newer]);
      expect(m.duplicates).toBe(1);
    }
  });

  it("a tie keeps the earlier store's record (a stable answer)", () => {
    const a = at(0, T1, { output: 'a\n' });
    const b = at(0, T1, { output: 'b\n' });
    expect(
      mergeReads([
        { where: 'a', results: [a], unreadable: [] },
        { where: 'b', results: [b], unreadable: [] },
      ]).results,
    ).toEqual([a]);
  });

  it('unreadable records are all kept and name their store when there are several', () => {
    const m = mergeReads([
      { where: 'pvc://sw-results-0/d/', results: [at(0, T1)], unreadable: [{ key: 'log line 2', reason: 'not JSON' }] },
      { where: 'pvc://sw-results-1/d/', results: [], unreadable: [{ key: '7.json', reason: 'holds index 8' }] },
    ]);
    expect(m.unreadable).toEqual([
      { key: 'pvc://sw-results-0/d/: log line 2', reason: 'not JSON' },
      { key: 'pvc://sw-results-1/d/: 7.json', reason: 'holds index 8' },
    ]);
    expect(mergeReads([{ where: 'one', results: [], unreadable: [{ key: 'k', reason: 'r' }] }]).unreadable).toEqual([{ key: 'k', reason: 'r' }]);
  });
});

describe('MergedSource', () => {
  it('reads every store once and merges them', async () => {
    const stores = [new Store([at(0, T1), at(1, T1)]), new Store([at(2, T1)], [{ key: 'x', reason: 'not JSON' }]), new Store([at(3, T1), at(1, T2)])];
    const m = await new MergedSource(
      stores.map((source, i) => ({ where: `s${i}`, source })),
      2,
    ).read();
    expect(m.results.map((r) => [r.index, r.storedAt])).toEqual([
      [0, T1],
      [1, T2],
      [2, T1],
      [3, T1],
    ]);
    expect(m.duplicates).toBe(1);
    expect(m.unreadable).toEqual([{ key: 's1: x', reason: 'not JSON' }]);
    expect(stores.map((s) => s.reads)).toEqual([1, 1, 1]);
  });

  it('a store that cannot be read fails the whole read (no partial answer)', async () => {
    const stores = [new Store([at(0, T1)]), new Store([], [], new Error('reader pod sw-results-abc failed'))];
    await expect(new MergedSource(stores.map((source, i) => ({ where: `s${i}`, source }))).read()).rejects.toThrow('reader pod sw-results-abc failed');
  });

  it("find: the agent's own shard's store only, when it holds the record", async () => {
    const stores = [new Store([at(0, T1)]), new Store([at(5, T1)]), new Store([at(9, T1)])];
    const merged = new MergedSource(stores.map((source, i) => ({ where: `s${i}`, source })));
    const found = await merged.find(5, 1);
    expect(found.result?.index).toBe(5);
    expect(stores.map((s) => s.reads)).toEqual([0, 1, 0]);
  });

  it("find: the other stores when its shard's has none, and undefined when none has it", async () => {
    const stores = [new Store([at(0, T1)]), new Store([]), new Store([at(5, T1)])];
    const merged = new MergedSource(stores.map((source, i) => ({ where: `s${i}`, source })));
    expect((await merged.find(5, 1)).result?.index).toBe(5);
    expect(stores.map((s) => s.reads)).toEqual([1, 1, 1]);
    const none = await merged.find(7, -1);
    expect(none.result).toBeUndefined();
    expect(none.read.results.map((r) => r.index)).toEqual([0, 5]);
  });
});
