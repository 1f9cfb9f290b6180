// What the results reader pod prints (`cfn results --dir`) and `cfn results`
// reads back from its log: one JSON object per line, a page of records at a
// time (a pod's log is rotated past the kubelet's containerLogMaxSize, 10 MiB
// by default, so no page comes near it), ending with an "end" line that says
// where the next page starts. Every line is parsed with zod on the way in:
// the records hold what agents wrote.
import { z } from 'zod';
import { storedResult } from './stored-result.js';
import type { ResultSource, UnreadableRecord } from './result-sink.js';
import type { StoredResult } from './stored-result.js';

/** Bytes of record lines per page: far below the kubelet's default 10 MiB log rotation. */
export const PAGE_BYTES = 4 * 1024 * 1024;

const recordLine = z.object({ kind: z.literal('record'), record: z.unknown() });
const unreadableLine = z.object({ kind: z.literal('unreadable'), key: z.string().max(4096), reason: z.string().max(4096) });
const endLine = z.object({
  kind: z.literal('end'),
  /** The index the next page starts at; null: this was the last page. */
  next: z.number().int().min(0).nullable(),
  /** Records of the whole directory (every page). */
  stored: z.number().int().min(0),
});
const readerLine = z.discriminatedUnion('kind', [recordLine, unreadableLine, endLine]);

/**
 * One page: the records from index `from` on, until `maxBytes` of lines are
 * out (at least one record per page), then the end line. Unreadable records
 * go out on the first page only.
 */
export async function* readerPage(source: ResultSource, from: number, maxBytes = PAGE_BYTES): AsyncGenerator<string> {
  const { results, unreadable } = await source.read();
  if (from === 0) for (const u of unreadable) yield `${JSON.stringify({ kind: 'unreadable', key: u.key, reason: u.reason })}\n`;
  let bytes = 0;
  let next: number | null = null;
  for (const record of results) {
    if (record.index < from) continue;
    if (bytes > 0 && bytes >= maxBytes) {
      next = record.index;
      break;
    }
    const line = `${JSON.stringify({ kind: 'record', record })}\n`;
    bytes += Buffer.byteLength(line);
    yield line;
  }
  yield `${JSON.stringify({ kind: 'end', next, stored: results.length })}\n`;
}

export interface ReaderPage {
  results: StoredResult[];
  unreadable: UnreadableRecord[];
  /** The end line: absent when the log was cut (the pod died, the log rotated). */
  end?: { next: number | null; stored: number };
}

/** Parses a reader pod's log; a line that is not the protocol, or a record that fails the schema, is counted as unreadable. */
export function parseReaderLog(log: string): ReaderPage {
  const page: ReaderPage = { results: [], unreadable: [] };
  const lines = log.split('\n');
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    const key = `log line ${i + 1}`;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      page.unreadable.push({ key, reason: 'not JSON' });
      return;
    }
    const line = readerLine.safeParse(json);
    if (!line.success) {
      page.unreadable.push({ key, reason: `not a reader line: ${line.error.issues[0]?.message ?? 'invalid'}` });
      return;
    }
    const l = line.data;
    if (l.kind === 'end') page.end = { next: l.next, stored: l.stored };
    else if (l.kind === 'unreadable') page.unreadable.push({ key: l.key, reason: l.reason });
    else {
      const r = storedResult.safeParse(l.record);
      if (r.success) page.results.push(r.data);
      else page.unreadable.push({ key, reason: `record: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`.slice(0, 4096) });
    }
  });
  return page;
}
