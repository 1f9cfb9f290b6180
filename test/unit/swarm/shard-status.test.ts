// The sum of a sharded swarm's shards (shard-status.ts): what the operator
// writes as the swarm-wide figures from the progress each shard's coordinator
// published into its status.shards entry.
import { describe, expect, it } from '@jest/globals';
import { aggregateShards, operatorShardFields, rangeIndexes, shardProgress, SWARM_FAILED_AGENTS_MAX } from '../../../operator/swarm/shard-status.js';
import { shardRanges } from '../../../operator/swarm/shards.js';
import type { ShardProgress } from '../../../operator/swarm/shard-status.js';

const ranges = shardRanges(10, 3); // 0-2, 3-5, 6-9

describe('aggregateShards', () => {
  it('sums agents, unites the index sets, takes the longest coordination time, delivery = completed / total', () => {
    const progress: ShardProgress[] = [
      { agents: { total: 3, completed: 3, failed: 0 }, completedAgents: '0-2', failedIndexes: '', coordinationTimeMs: 1200 },
      {
        agents: { total: 3, completed: 2, failed: 1 },
        completedAgents: '3,5',
        failedIndexes: '4',
        failedAgents: [{ index: 4, reason: 'exit code 1' }],
        coordinationTimeMs: 3400,
      },
      { agents: { total: 4, completed: 4, failed: 0 }, completedAgents: '6-9', failedIndexes: '', coordinationTimeMs: 900 },
    ];
    expect(aggregateShards(ranges, progress)).toEqual({
      agents: { total: 10, completed: 9, failed: 1 },
      deliveryRate: 90,
      completedAgents: '0-3,5-9',
      failedIndexes: '4',
      failedAgents: [{ index: 4, reason: 'exit code 1' }],
      coordinationTimeMs: 3400,
    });
  });

  it('a shard that published nothing yet counts its range as total, none done; no result until every shard has one', () => {
    const out = aggregateShards(ranges, [{ agents: { total: 3, completed: 1, failed: 0 }, completedAgents: '1', result: { status: 'completed' } }, {}, {}]);
    expect(out.agents).toEqual({ total: 10, completed: 1, failed: 0 });
    expect(out.deliveryRate).toBe(10);
    expect(out.result).toBeUndefined();
  });

  it("the run's result: completed when every shard completed, else the first shard that did not, named", () => {
    const done = (status: 'completed' | 'failed' | 'timeout', message?: string): ShardProgress => ({
      agents: { total: 3, completed: 3, failed: 0 },
      result: { status, ...(message ? { message } : {}) },
    });
    expect(aggregateShards(ranges, [done('completed'), done('completed'), done('completed')]).result?.status).toBe('completed');
    expect(aggregateShards(ranges, [done('completed'), done('timeout', 'deadline of 60s passed'), done('failed', 'x')]).result).toEqual({
      status: 'timeout',
      message: 'shard 1: deadline of 60s passed',
    });
  });

  it('interrupted agents united and rerun summed; failed agents bounded in shard order', () => {
    const many = (from: number): ShardProgress => ({
      failedAgents: Array.from({ length: 30 }, (_, i) => ({ index: from + i, reason: 'r' })),
      interruptedAgents: `${from}`,
      rerunAgents: 1,
    });
    const out = aggregateShards(shardRanges(90, 3), [many(0), many(30), many(60)]);
    expect(out.failedAgents).toHaveLength(SWARM_FAILED_AGENTS_MAX);
    expect(out.failedAgents?.[0]?.index).toBe(0);
    expect(out.failedAgents?.at(-1)?.index).toBe(49);
    expect(out).toMatchObject({ interruptedAgents: '0,30,60', rerunAgents: 3 });
  });

  it('results: counts summed, one location when the shards share a sink, else the first and how many more; any lastError', () => {
    const r = (claim: string, stored: number, lastError?: string): ShardProgress => ({
      results: {
        type: 'persistentVolumeClaim',
        location: `pvc://${claim}/ns/s/uid/`,
        stored,
        bytes: stored * 10,
        pending: 1,
        ...(lastError ? { lastError } : {}),
      },
    });
    expect(aggregateShards(ranges, [r('s-results-0', 3), r('s-results-1', 2, 'ENOSPC'), r('s-results-2', 4)]).results).toEqual({
      type: 'persistentVolumeClaim',
      location: 'pvc://s-results-0/ns/s/uid/ and 2 more (status.shards[].results.location)',
      stored: 9,
      bytes: 90,
      pending: 3,
      lastError: 'ENOSPC',
    });
    expect(aggregateShards(ranges, [r('mine', 3), r('mine', 3), r('mine', 4)]).results?.location).toBe('pvc://mine/ns/s/uid/');
  });
});

describe('the per-shard view', () => {
  it('rangeIndexes compresses a range', () => {
    expect(ranges.map(rangeIndexes)).toEqual(['0-2', '3-5', '6-9']);
    expect(rangeIndexes({ shard: 0, start: 4, end: 5 })).toBe('4');
  });

  it("a single shard's progress is the top-level fields, a sharded swarm's its entry's", () => {
    const status = {
      agents: { total: 10, completed: 1, failed: 0 },
      completedAgents: '0',
      shards: [{ index: 1, indexes: '3-5', agents: { total: 3, completed: 2, failed: 0 }, completedAgents: '3-4', progressPod: 's-v2-1-s1' }],
    };
    expect(shardProgress(status, 0, false)).toEqual({ agents: { total: 10, completed: 1, failed: 0 }, completedAgents: '0' });
    expect(shardProgress(status, 1, true)).toEqual({ agents: { total: 3, completed: 2, failed: 0 }, completedAgents: '3-4', progressPod: 's-v2-1-s1' });
    expect(shardProgress(status, 2, true)).toEqual({});
  });

  it('the operator applies its own fields of an entry only', () => {
    expect(
      operatorShardFields({ index: 1, indexes: '3-5', pod: 'p', phase: 'Running', agents: { total: 3, completed: 1, failed: 0 }, progressPod: 'p' }),
    ).toEqual({ index: 1, indexes: '3-5', pod: 'p', phase: 'Running' });
  });
});
