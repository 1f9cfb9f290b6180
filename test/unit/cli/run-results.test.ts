// `cfn run --results FILE` in-process against the real engines: one JSON line
// per agent, written as each result arrives; the table names the first failures.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../../../operator/cli/main.js';
import { storedResult } from '../../../operator/results/stored-result.js';
import { captureIo } from '../../helpers/capture.js';

jest.setTimeout(60_000);

let shm: string;
const io = () => captureIo({ ...process.env, CFN_SHM_PATH: shm, LOG_LEVEL: 'silent' });
const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => storedResult.parse(JSON.parse(l)));

beforeAll(async () => {
  shm = await mkdtemp('/dev/shm/cfn-test-results-');
});
afterAll(async () => {
  await rm(shm, { recursive: true, force: true });
});

describe('cfn run --results', () => {
  it.each(['v2', 'v1'] as const)('%s: one record line per agent, outputs and errors intact; the table lists the first failures', async (version) => {
    const file = join(shm, `results-${version}.jsonl`);
    writeFileSync(file, 'old content\n');
    const agent = `sh -c 'printf "out %s\\n" "$AGENT_INDEX"; [ $((AGENT_INDEX % 4)) -ne 3 ] || { printf "boom \\033[31m%s\\n" "$AGENT_INDEX" >&2; exit 4; }'`;
    const x = io();
    const args = [
      'run',
      '--agents',
      '12',
      '--retries',
      '0',
      '--min-delivery',
      '50',
      '--version',
      version,
      '--memory-path',
      join(shm, `m-${version}.sqlite`),
      '--results',
      file,
      '--agent-command',
      agent,
    ];
    expect(await runCli(args, x)).toBe(0);
    const records = lines(file);
    expect(records).toHaveLength(12);
    expect(records.map((r) => r.index).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    for (const r of records) {
      expect(r.version).toBe(version);
      expect(r.output).toBe(`out ${r.index}\n`);
      if (r.index % 4 === 3) expect(r).toMatchObject({ status: 'failed', exitCode: 4, error: expect.stringContaining(`boom \u001b[31m${r.index}`) });
      else expect(r).toMatchObject({ status: 'completed', exitCode: 0, error: null });
    }
    // The first failures with their errors, control characters made harmless.
    const failureLines = x.out.text.split('\n').filter((l) => /^(failures|\s+agent \d+:)/.test(l));
    expect(failureLines).toHaveLength(3);
    expect(failureLines[0]).toMatch(/^failures\s+agent (3|7|11): exit 4, boom \?\[31m(3|7|11)$/);
    expect(x.out.text).not.toContain('\u001b');
  });

  it("streams: an agent's line is in the file while other agents still run", async () => {
    const file = join(shm, 'stream.jsonl');
    const gate = join(shm, 'gate');
    // Agent 0 answers at once; the others wait for the test to open the gate.
    const agent = `sh -c '[ "$AGENT_INDEX" -eq 0 ] || while [ ! -e ${gate} ]; do sleep 0.05; done; echo "done $AGENT_INDEX"'`;
    const x = io();
    const run = runCli(['run', '--agents', '4', '--version', 'v2', '--agent-timeout', '30', '--results', file, '--agent-command', agent], x);
    const end = Date.now() + 20_000;
    while (!(existsSync(file) && readFileSync(file, 'utf8').includes('"index":0'))) {
      if (Date.now() > end) throw new Error('agent 0 line never written');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(lines(file).map((r) => r.index)).toEqual([0]);
    writeFileSync(gate, '');
    expect(await run).toBe(0);
    expect(
      lines(file)
        .map((r) => r.index)
        .sort(),
    ).toEqual([0, 1, 2, 3]);
  });

  it('a file that cannot be created is a usage error before any agent runs; - is refused', async () => {
    const x = io();
    expect(await runCli(['run', '--agents', '2', '--results', join(shm, 'no-such-dir', 'r.jsonl')], x)).toBe(2);
    expect(x.err.text).toMatch(/^cfn: --results .*no-such-dir\/r\.jsonl: ENOENT/);
    expect(x.out.text).toBe('');
    const y = io();
    expect(await runCli(['run', '--agents', '2', '--results', '-'], y)).toBe(2);
    expect(y.err.text).toBe('cfn: --results needs a file (stdout carries the summary)\n');
  });

  it('a full volume: the run says how many results were not written and why, and fails (exit 1)', async () => {
    const dir = join(shm, 'full');
    await mkdir(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', dir]);
    try {
      const file = join(dir, 'r.jsonl');
      const x = io();
      // 8 answers of 4 kB into 16 kB.
      expect(
        await runCli(['run', '--agents', '8', '--version', 'v2', '--results', file, '--agent-command', `sh -c 'head -c 4000 /dev/zero | tr "\\0" x'`], x),
      ).toBe(1);
      expect(x.err.text).toMatch(/^cfn: --results .*r\.jsonl: [1-8] of 8 results could not be written: ENOSPC/m);
      // What was written is whole records (a partial line is cut back), as many as the message says.
      const notWritten = Number(/: (\d) of 8 results/.exec(x.err.text)?.[1]);
      expect(readFileSync(file, 'utf8').endsWith('\n') || readFileSync(file, 'utf8') === '').toBe(true);
      expect(lines(file)).toHaveLength(8 - notWritten);
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});
