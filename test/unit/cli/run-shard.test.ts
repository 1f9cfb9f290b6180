// `cfn run --shard I/N` in-process against the real engines: each shard runs
// the agents shardRanges gives it, and together the shards run every agent once.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runCli } from '../../../operator/cli/main.js';
import { shardRanges } from '../../../operator/swarm/shards.js';
import { captureIo } from '../../helpers/capture.js';

jest.setTimeout(60_000);

let shm: string;
let dir: string;

const io = (version: 'v1' | 'v2') => captureIo({ ...process.env, CFN_SHM_PATH: shm, LOG_LEVEL: 'silent', COORDINATION_VERSION: version });

beforeAll(async () => {
  shm = await mkdtemp('/dev/shm/cfn-test-shard-');
  dir = await mkdtemp(join(tmpdir(), 'cfn-shard-'));
});

afterAll(async () => {
  await rm(shm, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
});

const agentCommand = ['--', 'sh', '-c', 'echo "$AGENT_INDEX/$CFN_AGENTS_TOTAL $(cat)"'];

describe('cfn run --shard I/N', () => {
  for (const version of ['v2', 'v1'] as const) {
    it(`${version}: three shards of 10 agents run every agent once, with the swarm's indexes and tasks; --json says which range ran`, async () => {
      const tasks = join(dir, `tasks-${version}.txt`);
      await writeFile(tasks, Array.from({ length: 10 }, (_, i) => `task ${i}\n`).join(''));
      const seen: number[] = [];
      for (const [i, range] of shardRanges(10, 3).entries()) {
        const x = io(version);
        const results = join(dir, `r-${version}-${i}.jsonl`);
        const argv = [
          'run',
          '--tasks',
          tasks,
          '--shard',
          `${i}/3`,
          '--swarm-id',
          `shard-${version}-${process.pid}`,
          '--memory-path',
          join(dir, 'm.sqlite'),
          '--results',
          results,
          '--json',
          ...agentCommand,
        ];
        expect(await runCli(argv, x)).toBe(0);
        expect(x.err.text).toBe('');
        const summary = JSON.parse(x.out.text) as Record<string, unknown>;
        const size = range.end - range.start;
        expect(summary).toMatchObject({
          status: 'completed',
          version,
          agents: { total: size, completed: size, failed: 0 },
          deliveryRate: 100,
          indexRange: { start: range.start, end: range.end },
          shard: { index: i, count: 3 },
        });
        const lines = (await readFile(results, 'utf8'))
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { index: number; output: string });
        for (const r of lines) expect(r.output).toBe(`${r.index}/10 task ${r.index}\n`);
        seen.push(...lines.map((r) => r.index));
      }
      expect(seen.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });
  }

  it('the summary table names the shard and its agents', async () => {
    const x = io('v2');
    expect(await runCli(['run', '--agents', '7', '--shard', '1/2', '--objective', 'x', '--', 'true'], x)).toBe(0);
    expect(x.out.text).toMatch(/^shard\s+1\/2: agents 3\.\.6$/m);
    expect(x.out.text).toMatch(/^agents\s+4 total, 4 completed, 0 failed$/m);
  });

  it('a bad --shard or --topology is a usage error (exit 2) naming the fix, and runs nothing', async () => {
    for (const [argv, message] of [
      [['run', '--agents', '4', '--shard', '4/4'], 'cfn: --shard must be I/N with 0 <= I < N, like 0/4 for the first of four shards (got "4/4")\n'],
      [['run', '--agents', '2', '--shard', '0/3'], 'cfn: --shard 0/3: 2 agents cannot make 3 shards (at most one shard per agent)\n'],
      [
        ['run', '--agents', '4', '--topology', 'hybrid'],
        'cfn: --topology is gone: one coordinator runs its agents flat; split a large swarm into shards with --shard I/N (on Kubernetes: spec.shards, or spec.topology hybrid)\n',
      ],
    ] as const) {
      const x = io('v2');
      expect(await runCli([...argv], x)).toBe(2);
      expect(x.err.text).toBe(message);
      expect(x.out.text).toBe('');
    }
  });
});
