import { describe, expect, it } from '@jest/globals';
import { compressRanges, expandRanges, RangeSyntaxError } from '../../../operator/util/ranges.js';

describe('ranges', () => {
  it('compresses unsorted indexes with duplicates', () => {
    expect(compressRanges([15, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])).toBe('0-9,15');
    expect(compressRanges([])).toBe('');
    expect(compressRanges([7])).toBe('7');
    expect(compressRanges([1, 3, 5])).toBe('1,3,5');
  });

  it('expands ranges, sorted and unique', () => {
    expect(expandRanges('0-3,15')).toEqual([0, 1, 2, 3, 15]);
    expect(expandRanges(' 5 , 2-3, 3 ')).toEqual([2, 3, 5]);
    expect(expandRanges('')).toEqual([]);
  });

  it('round-trips', () => {
    const set = [0, 1, 2, 10, 11, 99, 500, 501, 502, 999];
    expect(expandRanges(compressRanges(set))).toEqual(set);
  });

  it('rejects malformed specs with a clear error', () => {
    expect(() => expandRanges('3-1')).toThrow(RangeSyntaxError);
    expect(() => expandRanges('a')).toThrow(/bad part "a"/);
    expect(() => expandRanges('1,,2')).toThrow(/bad part ""/);
    expect(() => expandRanges('-1')).toThrow(RangeSyntaxError);
    expect(() => expandRanges('0-100', 10)).toThrow(/more than 10/);
    expect(() => compressRanges([-1])).toThrow(RangeError);
    expect(() => compressRanges([1.5])).toThrow(RangeError);
  });
});
