import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRunOptions, TOPOLOGY_RETIRED } from '../../../operator/cli/run-options.js';
import { DEFAULT_OBJECTIVE, DEFAULTS } from '../../../operator/cli/defaults.js';
import { UsageError } from '../../../operator/cli/usage-error.js';
import { shardRanges } from '../../../operator/swarm/shards.js';
import { toObjectiveSpec } from '../../../operator/cli/run-command.js';

function usage(argv: string[]): string {
  try {
    parseRunOptions(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    const message = (err as Error).message;
    expect(message.includes('\n')).toBe(false);
    return message;
  }
  throw new Error(`expected a usage error for ${argv.join(' ')}`);
}

describe('parseRunOptions', () => {
  it('applies defaults', () => {
    const o = parseRunOptions(['--agents', '50']);
    expect(o).toMatchObject({
      agents: 50,
      shard: undefined,
      indexRange: { start: 0, end: 50 },
      agentCommand: ['cat'],
      objective: DEFAULT_OBJECTIVE,
      timeoutSeconds: DEFAULTS.timeoutSeconds,
      retries: DEFAULTS.retries,
      concurrency: 50,
      minDelivery: 100,
      json: false,
    });
    expect(o.swarmId).toMatch(/^run-/);
    expect(parseRunOptions(['--agents', '1000']).concurrency).toBe(DEFAULTS.concurrency);
  });

  it('parses every flag', () => {
    const o = parseRunOptions([
      '--agents',
      '7',
      '--shard',
      '1/2',
      '--agent-command',
      `sh -c 'echo "$1"' x`,
      '--objective',
      'do $(x)',
      '--timeout',
      '9.5',
      '--agent-timeout',
      '2',
      '--retries',
      '3',
      '--no-retry-exit-codes',
      '3,2,3',
      '--concurrency',
      '4',
      '--shm-path',
      '/tmp/s',
      '--min-delivery',
      '90',
      '--max-output',
      '100',
      '--json',
      '--swarm-id',
      'abc.1',
      '--version',
      'auto',
      '--config',
      'c.json',
      '--no-fallback',
      '--memory-path',
      '/tmp/m.sqlite',
    ]);
    expect(o).toEqual({
      agents: 7,
      shard: { index: 1, count: 2 },
      indexRange: { start: 3, end: 7 },
      agentCommand: ['sh', '-c', 'echo "$1"', 'x'],
      objective: 'do $(x)',
      timeoutSeconds: 9.5,
      agentTimeoutSeconds: 2,
      retries: 3,
      noRetryExitCodes: [2, 3],
      concurrency: 4,
      shmPath: '/tmp/s',
      minDelivery: 90,
      maxOutputBytes: 100,
      json: true,
      swarmId: 'abc.1',
      help: false,
      version: 'auto',
      rolloutPercentage: undefined,
      configFile: 'c.json',
      noFallback: true,
      memoryPath: '/tmp/m.sqlite',
    });
    expect(parseRunOptions(['--agents', '1', '--rollout-percentage', '12.5'])).toMatchObject({
      version: undefined,
      rolloutPercentage: 12.5,
      noFallback: false,
    });
  });

  it('takes the agent argv after --, verbatim', () => {
    expect(parseRunOptions(['--agents', '1', '--', 'printf', '%s\\n', '$HOME']).agentCommand).toEqual(['printf', '%s\\n', '$HOME']);
  });

  it('rejects bad input with one clear line', () => {
    expect(usage([])).toBe('--agents N or --tasks FILE is required (see cfn run --help)');
    expect(usage(['--agents', 'x'])).toBe('--agents must be an integer from 1 to 100000 (got "x")');
    expect(usage(['--agents', '0'])).toMatch(/--agents must be an integer/);
    expect(usage(['--agents', '1.5'])).toMatch(/--agents must be an integer/);
    expect(usage(['--agents', '5', '--topology', 'hybrid'])).toBe(TOPOLOGY_RETIRED);
    expect(usage(['--agents', '5', '--topology=flat'])).toBe(TOPOLOGY_RETIRED);
    expect(TOPOLOGY_RETIRED).toMatch(/--shard I\/N .*spec\.shards/);
    for (const bad of ['2/2', '3/2', '0/0', '1', '1/', 'a/b', '1/2/3', '1.5/2', ' 1/2x']) {
      expect(usage(['--agents', '5', '--shard', bad])).toBe(
        `--shard must be I/N with 0 <= I < N, like 0/4 for the first of four shards (got ${JSON.stringify(bad)})`,
      );
    }
    expect(usage(['--agents', '3', '--shard', '0/4'])).toBe('--shard 0/4: 3 agents cannot make 4 shards (at most one shard per agent)');
    expect(usage(['--agents', '5', '--bogus'])).toMatch(/^unknown option '--bogus'/);
    expect(usage(['--agents'])).toMatch(/--agents/);
    expect(usage(['--agents', '5', '--agent-command', `echo 'oops`])).toMatch(/^--agent-command: unbalanced single quote/);
    expect(usage(['--agents', '5', '--agent-command', '  '])).toBe('--agent-command is empty');
    expect(usage(['--agents', '5', '--swarm-id', 'Bad/Id'])).toMatch(/^--swarm-id must match/);
    expect(usage(['--agents', '5', '--min-delivery', '101'])).toMatch(/^--min-delivery must be a number from 0 to 100/);
    expect(usage(['--agents', '5', '--no-retry-exit-codes', '0'])).toBe('--no-retry-exit-codes must list exit codes from 1 to 255, like 2,3 (got "0")');
    expect(usage(['--agents', '5', '--no-retry-exit-codes', '2,256'])).toMatch(/^--no-retry-exit-codes must list exit codes from 1 to 255/);
    expect(usage(['--agents', '5', '--no-retry-exit-codes', '2,,3'])).toMatch(/^--no-retry-exit-codes must list/);
    expect(usage(['--agents', '5', '--timeout', '0'])).toMatch(/^--timeout must be a number greater than 0/);
    expect(usage(['--agents', '5', 'stray'])).toMatch(/^unexpected argument "stray"/);
    expect(usage(['--agents', '5', '--agent-command', 'cat', '--', 'true'])).toMatch(/either with --agent-command or after --/);
  });

  it('builds the spec; --shard I/N gives it the range shardRanges gives shard I', () => {
    const spec = toObjectiveSpec(parseRunOptions(['--agents', '3', '--swarm-id', 's1', '--objective', 'x']));
    expect(spec).toMatchObject({ id: 's1', description: 'x', agents: 3, agentCommand: ['cat'] });
    expect(spec.indexRange).toBeUndefined();
    for (let i = 0; i < 3; i++) {
      const o = parseRunOptions(['--agents', '10', '--shard', `${i}/3`, '--concurrency', '64']);
      const r = shardRanges(10, 3)[i]!;
      expect(toObjectiveSpec(o)).toMatchObject({ agents: 10, indexRange: { start: r.start, end: r.end } });
      // Concurrency is capped at the shard's agents, not the swarm's.
      expect(o.concurrency).toBe(r.end - r.start);
    }
  });
});

describe('cfn run --tasks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'run-tasks-'));
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('defaults --agents to the task count and hands task i and its env to agent i', () => {
    const f = file('t.jsonl', '{"task":"a\\nb","env":[{"name":"FILE","value":"a.sh"}]}\n{"task":"c"}\n');
    const o = parseRunOptions(['--tasks', f]);
    expect(o.agents).toBe(2);
    expect(toObjectiveSpec(o)).toMatchObject({ agents: 2, tasks: ['a\nb', 'c'], taskEnv: [{ FILE: 'a.sh' }, {}] });
    expect(toObjectiveSpec(parseRunOptions(['--tasks', file('plain.txt', 'a\nb\n')]))).not.toHaveProperty('taskEnv');
    expect(parseRunOptions(['--tasks', f, '--agents', '2']).agents).toBe(2);
    expect(parseRunOptions(['--tasks', file('p.txt', 'x\ny\nz\n'), '--tasks-format', 'lines']).tasks).toEqual([{ task: 'x' }, { task: 'y' }, { task: 'z' }]);
  });

  it('a mismatch, a bad file or a bad format is a usage error naming them', () => {
    const f = file('three.txt', 'a\nb\nc\n');
    expect(usage(['--tasks', f, '--agents', '5'])).toBe(`--agents is 5 but --tasks ${f} holds 3 tasks: give one task per agent (or leave --agents out)`);
    expect(usage(['--tasks', join(dir, 'missing')])).toBe(`--tasks ${join(dir, 'missing')}: no such file`);
    expect(usage(['--tasks', file('empty', '\n\n')])).toBe(`--tasks ${join(dir, 'empty')}: holds no task`);
    expect(usage(['--tasks', file('bad.jsonl', '{"task":"a","env":[{"name":"CFN_TASK","value":"x"}]}\n')])).toMatch(
      /: line 1: env name CFN_TASK belongs to the engine/,
    );
    expect(usage(['--tasks', f, '--tasks-format', 'csv'])).toBe('--tasks-format must be lines, jsonl or auto (got "csv")');
    expect(usage(['--agents', '2', '--tasks-format', 'lines'])).toBe('--tasks-format needs --tasks');
  });
});
