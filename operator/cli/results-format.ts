// How `cfn results` shows what it read: JSON lines (one record per agent), a
// table for people, or a directory with one file per agent's output and a
// JSON lines index, each file written atomically.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite } from '../util/atomic-write.js';
import type { StoredResult } from '../results/stored-result.js';

export const RESULTS_FORMATS = ['jsonl', 'table'] as const;
export type ResultsFormat = (typeof RESULTS_FORMATS)[number];
/** The index file `--out` writes beside the outputs. */
export const OUT_INDEX = 'results.jsonl';

export const jsonLines = (results: readonly StoredResult[]): string => results.map((r) => `${JSON.stringify(r)}\n`).join('');

/** Control characters (an agent's output may hold any) shown as one visible mark, never sent to the terminal. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const printable = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '\u00b7');

function firstLine(r: StoredResult): string {
  const text = r.status === 'failed' && r.error ? r.error : r.output;
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return printable(line.trim());
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** A table: index, status, exit code, attempts, duration, the first line of the output (the error for a failed agent). */
export function resultsTable(results: readonly StoredResult[], width = 120): string {
  const header = ['INDEX', 'STATUS', 'EXIT', 'ATTEMPTS', 'DURATION', 'OUTPUT / ERROR'];
  const rows = results.map((r) => [
    String(r.index),
    r.status,
    r.exitCode === null ? '-' : String(r.exitCode),
    String(r.attempts),
    duration(r.durationMs),
    firstLine(r),
  ]);
  const widths = header.slice(0, -1).map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const lead = widths.reduce((a, w) => a + w + 2, 0);
  const room = Math.max(20, width - lead);
  const line = (cells: string[]) => {
    const last = cells.at(-1)!;
    const cut = last.length > room ? `${last.slice(0, room - 1)}\u2026` : last;
    return `${cells
      .slice(0, -1)
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')}  ${cut}`.trimEnd();
  };
  return [line(header), ...rows.map(line)].map((l) => `${l}\n`).join('');
}

/**
 * `--out DIR`: `<index>.out` holds agent index's output as it was stored, and
 * results.jsonl one line per agent (the record without its output, plus the
 * file name). Each file is written atomically; the index last, so a reader
 * that finds it finds every output it names.
 */
export async function writeOutDir(dir: string, results: readonly StoredResult[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const r of results) await atomicWrite(join(dir, `${r.index}.out`), r.output, { mode: 0o644 });
  const index = results.map(({ output: _output, ...rest }) => `${JSON.stringify({ ...rest, file: `${rest.index}.out` })}\n`).join('');
  await atomicWrite(join(dir, OUT_INDEX), index, { mode: 0o644 });
}
