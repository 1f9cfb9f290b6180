import { describe, expect, it } from '@jest/globals';
import { describeRange, engineRangeArg, indexRangeProblem, inRange, isWholeSwarm, rangeSize, runRange } from '../../../operator/coordination/index-range.js';
import { checkpointKey } from '../../../operator/coordination/v1/response-checkpoint-store.js';

describe('index ranges of a run', () => {
  it('a spec without indexRange runs the whole swarm; with one, its range', () => {
    expect(runRange({ agents: 7 })).toEqual({ start: 0, end: 7 });
    expect(runRange({ agents: 7, indexRange: { start: 2, end: 5 } })).toEqual({ start: 2, end: 5 });
    expect(rangeSize({ start: 2, end: 5 })).toBe(3);
    expect([1, 2, 4, 5, 2.5].map((i) => inRange({ start: 2, end: 5 }, i))).toEqual([false, true, true, false, false]);
    expect(isWholeSwarm({ agents: 7 })).toBe(true);
    expect(isWholeSwarm({ agents: 7, indexRange: { start: 0, end: 7 } })).toBe(true);
    expect(isWholeSwarm({ agents: 7, indexRange: { start: 0, end: 6 } })).toBe(false);
    expect(engineRangeArg({ start: 100, end: 200 })).toBe('100-200');
    expect(describeRange({ start: 100, end: 200 }, 300)).toBe('agents 100..199 of 300');
  });

  it('refuses a range outside the swarm and earlier indexes outside the range', () => {
    expect(indexRangeProblem({ agents: 10, indexRange: { start: 0, end: 10 } })).toBeUndefined();
    expect(indexRangeProblem({ agents: 10, indexRange: { start: 3, end: 7 }, completedIndexes: [3, 6], failedIndexes: [4] })).toBeUndefined();
    for (const r of [
      { start: 5, end: 5 },
      { start: 6, end: 5 },
      { start: 0, end: 11 },
      { start: -1, end: 3 },
      { start: 0.5, end: 3 },
    ]) {
      expect(indexRangeProblem({ agents: 10, indexRange: r })).toEqual({
        field: 'indexRange',
        message: `expected integers with 0 <= start < end <= agents (10), got {start: ${r.start}, end: ${r.end}}`,
      });
    }
    expect(indexRangeProblem({ agents: 10, indexRange: { start: 3, end: 7 }, completedIndexes: [2] })).toEqual({
      field: 'completedIndexes',
      message: "2 is outside the run's range 3..6",
    });
    expect(indexRangeProblem({ agents: 10, indexRange: { start: 3, end: 7 }, failedIndexes: [7] })).toEqual({
      field: 'failedIndexes',
      message: "7 is outside the run's range 3..6",
    });
    expect(indexRangeProblem({ agents: 10, failedIndexes: [10] })).toEqual({ field: 'failedIndexes', message: "10 is outside the run's range 0..9" });
  });

  it('V1 checkpoints each range of an objective under its own key; the whole swarm under the id', () => {
    expect(checkpointKey({ id: 'sw-1', agents: 10 })).toBe('sw-1');
    expect(checkpointKey({ id: 'sw-1', agents: 10, indexRange: { start: 0, end: 10 } })).toBe('sw-1');
    expect(checkpointKey({ id: 'sw-1', agents: 10, indexRange: { start: 0, end: 5 } })).toBe('sw-1@0-5');
    expect(checkpointKey({ id: 'sw-1', agents: 10, indexRange: { start: 5, end: 10 } })).toBe('sw-1@5-10');
  });
});
