import { describe, expect, it } from '@jest/globals';
import { swarmSpec } from '../../../operator/api/swarm.js';
import { shardCount, shardRanges, swarmShardCount, swarmShardRanges } from '../../../operator/swarm/shards.js';

const spec = (extra: Record<string, unknown>) => swarmSpec.parse({ objective: 'o', agent: { command: ['true'] }, ...extra });

describe('shardRanges', () => {
  it('splits the indexes into contiguous ranges differing by at most one', () => {
    expect(shardRanges(10, 3)).toEqual([
      { shard: 0, start: 0, end: 3 },
      { shard: 1, start: 3, end: 6 },
      { shard: 2, start: 6, end: 10 },
    ]);
    const r = shardRanges(10000, 7);
    expect(r[0]?.start).toBe(0);
    expect(r.at(-1)?.end).toBe(10000);
    for (let i = 1; i < r.length; i++) expect(r[i]?.start).toBe(r[i - 1]?.end);
    const sizes = r.map((x) => x.end - x.start);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('refuses more shards than agents and non-integers', () => {
    expect(() => shardRanges(2, 3)).toThrow(/shards must be 1\.\.2, got 3/);
    expect(() => shardRanges(0, 1)).toThrow(/agents must be a positive integer/);
    expect(() => shardRanges(5, 1.5)).toThrow(/shards must be/);
  });
});

describe('shardCount', () => {
  it('takes a number as it is, never more than the agents', () => {
    expect(shardCount(spec({ agents: 30, shards: 3 }))).toBe(3);
    expect(shardCount(spec({ agents: 2, shards: 5 }))).toBe(2);
  });

  it('auto: one shard per 300 agents', () => {
    expect(shardCount(spec({ agents: 300 }))).toBe(1);
    expect(shardCount(spec({ agents: 301 }))).toBe(2);
    expect(shardCount(spec({ agents: 10000 }))).toBe(34);
  });

  it('auto with a cpu request: every agent runs at once (agents / concurrency), at most 100', () => {
    const heavy = (agents: number, concurrency: number, cpu: string | number) =>
      spec({ agents, agent: { command: ['true'], concurrency, resources: { requests: { cpu } } } });
    expect(shardCount(heavy(1000, 32, '500m'))).toBe(32);
    expect(shardCount(heavy(10000, 32, 1))).toBe(100);
    expect(shardCount(heavy(100, 32, '0'))).toBe(1);
  });

  it('follows the topology: flat is one shard, hybrid at least two', () => {
    expect(shardCount(spec({ agents: 30, topology: 'flat' }))).toBe(1);
    expect(shardCount(spec({ agents: 30, topology: 'hybrid' }))).toBe(2);
    expect(shardCount(spec({ agents: 1, topology: 'hybrid' }))).toBe(1);
  });

  it('gives the ranges of a spec', () => {
    expect(swarmShardRanges({ spec: spec({ agents: 4, shards: 2 }) })).toEqual([
      { shard: 0, start: 0, end: 2 },
      { shard: 1, start: 2, end: 4 },
    ]);
  });
});

describe('swarmShardCount', () => {
  it('is decided once: status.shardCount wins over what the spec gives now', () => {
    expect(swarmShardCount({ spec: spec({ agents: 900 }) })).toBe(3);
    expect(swarmShardCount({ spec: spec({ agents: 900 }), status: { version: 'v2', shardCount: 2 } })).toBe(2);
  });

  it('a swarm whose version an operator without shards decided runs as its one pod', () => {
    expect(swarmShardCount({ spec: spec({ agents: 900 }), status: { version: 'v2' } })).toBe(1);
    expect(swarmShardRanges({ spec: spec({ agents: 900 }), status: { version: 'v1' } })).toEqual([{ shard: 0, start: 0, end: 900 }]);
  });
});
