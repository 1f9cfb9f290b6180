import { describe, expect, it } from '@jest/globals';
import { assertValidId, generateId, InvalidIdError, isValidId } from '../../../operator/util/ids.js';

describe('ids', () => {
  it('accepts contract-conforming ids', () => {
    for (const id of ['a', '0', 's1', 'swarm-1.2_x', 'a'.repeat(63)]) expect(isValidId(id)).toBe(true);
  });

  it('rejects ids that are unsafe or too long as directory names', () => {
    for (const id of ['', '.', '..', '-a', '.a', '_a', 'A', 'a/b', '../x', 'a b', 'a'.repeat(64), 'é', 'a\n']) {
      expect(isValidId(id)).toBe(false);
    }
    expect(() => assertValidId('../etc')).toThrow(InvalidIdError);
    expect(() => assertValidId('../etc')).toThrow(/invalid id "\.\.\/etc"/);
  });

  it('generates unique valid ids and sanitizes the prefix', () => {
    const ids = new Set(Array.from({ length: 200 }, () => generateId()));
    expect(ids.size).toBe(200);
    for (const id of ids) expect(isValidId(id)).toBe(true);
    expect(generateId('My Run!')).toMatch(/^my-run--[a-z0-9]+-[0-9a-f]{8}$/);
    expect(isValidId(generateId('///'))).toBe(true);
  });
});
