// Compact index sets such as "0-9,15": used for resume (which agents already
// have their final answer) and for Swarm status.completedAgents and
// status.failedIndexes.

export class RangeSyntaxError extends Error {
  constructor(spec: string, detail: string) {
    super(`invalid index range ${JSON.stringify(spec)}: ${detail}`);
    this.name = 'RangeSyntaxError';
  }
}

/** Sorted, de-duplicated indexes -> "0-9,15". Accepts any order and duplicates. */
export function compressRanges(indexes: Iterable<number>): string {
  const sorted = [...new Set(indexes)].sort((a, b) => a - b);
  for (const n of sorted) {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`index must be a non-negative integer, got ${n}`);
  }
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    const start = sorted[i] as number;
    let end = start;
    while (i + 1 < sorted.length && sorted[i + 1] === end + 1) {
      i += 1;
      end += 1;
    }
    parts.push(start === end ? `${start}` : `${start}-${end}`);
    i += 1;
  }
  return parts.join(',');
}

/** "0-9,15" -> [0..9, 15], sorted and unique. `limit` bounds the expanded size (default 10 million). */
export function expandRanges(spec: string, limit = 10_000_000): number[] {
  const trimmed = spec.trim();
  if (trimmed === '') return [];
  const out = new Set<number>();
  for (const raw of trimmed.split(',')) {
    const part = raw.trim();
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new RangeSyntaxError(spec, `bad part ${JSON.stringify(part)}`);
    const start = Number(m[1]);
    const end = m[2] === undefined ? start : Number(m[2]);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) throw new RangeSyntaxError(spec, `number too large in ${JSON.stringify(part)}`);
    if (end < start) throw new RangeSyntaxError(spec, `descending range ${JSON.stringify(part)}`);
    if (out.size + (end - start + 1) > limit) throw new RangeSyntaxError(spec, `expands to more than ${limit} indexes`);
    for (let n = start; n <= end; n += 1) out.add(n);
  }
  return [...out].sort((a, b) => a - b);
}
