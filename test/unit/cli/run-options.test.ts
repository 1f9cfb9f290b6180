import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRunOptions } from '../../../operator/cli/run-options.js';
import { DEFAULT_OBJECTIVE, DEFAULTS } from '../../../operator/cli/defaults.js';
import { UsageError } from '../../../operator/cli/usage-error.js';
import { resolveTopology } from '../../../operator/coordination/version/decide-version.js';
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
      agents: 50, topology: 'auto', agentCommand: ['cat'], objective: DEFAULT_OBJECTIVE,
      timeoutSeconds: DEFAULTS.timeoutSeconds, retries: DEFAULTS.retries, concurrency: 50, minDelivery: 100, json: false,
    });
    expect(o.swarmId).toMatch(/^run-/);
    expect(parseRunOptions(['--agents', '1000']).concurrency).toBe(DEFAULTS.concurrency);
  });

  it('parses every flag', () => {
    const o = parseRunOptions([
      '--agents', '7', '--topology', 'hybrid', '--agent-command', `sh -c 'echo "$1"' x`, '--objective', 'do $(x)',
      '--timeout', '9.5', '--agent-timeout', '2', '--retries', '3', '--no-retry-exit-codes', '3,2,3', '--concurrency', '4', '--shm-path', '/tmp/s',
      '--min-delivery', '90', '--max-output', '100', '--json', '--swarm-id', 'abc.1',
      '--version', 'auto', '--config', 'c.json', '--no-fallback', '--memory-path', '/tmp/m.sqlite',
    ]);
    expect(o).toEqual({
      agents: 7, topology: 'hybrid', agentCommand: ['sh', '-c', 'echo "$1"', 'x'], objective: 'do $(x)',
      timeoutSeconds: 9.5, agentTimeoutSeconds: 2, retries: 3, noRetryExitCodes: [2, 3], concurrency: 4, shmPath: '/tmp/s', minDelivery: 90,
      maxOutputBytes: 100, json: true, swarmId: 'abc.1', help: false,
      version: 'auto', rolloutPercentage: undefined, configFile: 'c.json', noFallback: true, memoryPath: '/tmp/m.sqlite',
    });
    expect(parseRunOptions(['--agents', '1', '--rollout-percentage', '12.5'])).toMatchObject({ version: undefined, rolloutPercentage: 12.5, noFallback: false });
  });

  it('takes the agent argv after --, verbatim', () => {
    expect(parseRunOptions(['--agents', '1', '--', 'printf', '%s\\n', '$HOME']).agentCommand).toEqual(['printf', '%s\\n', '$HOME']);
  });

  it('rejects bad input with one clear line', () => {
    expect(usage([])).toBe("--agents N or --tasks FILE is required (see cfn run --help)");
    expect(usage(['--agents', 'x'])).toBe('--agents must be an integer from 1 to 100000 (got "x")');
    expect(usage(['--agents', '0'])).toMatch(/--agents must be an integer/);
    expect(usage(['--agents', '1.5'])).toMatch(/--agents must be an integer/);
    expect(usage(['--agents', '5', '--topology', 'star'])).toBe('--topology must be flat, hybrid or auto (got "star")');
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

  it('resolves auto topology by size and builds the spec', () => {
    expect(resolveTopology('auto', 10)).toBe('flat');
    expect(resolveTopology('auto', 300)).toBe('flat');
    expect(resolveTopology('auto', 301)).toBe('hybrid');
    expect(resolveTopology('auto', 5000)).toBe('hybrid');
    expect(resolveTopology('flat', 5000)).toBe('flat');
    const spec = toObjectiveSpec(parseRunOptions(['--agents', '3', '--swarm-id', 's1', '--objective', 'x']));
    expect(spec).toMatchObject({ id: 's1', description: 'x', agents: 3, topology: 'flat', agentCommand: ['cat'] });
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
    expect(usage(['--tasks', file('bad.jsonl', '{"task":"a","env":[{"name":"CFN_TASK","value":"x"}]}\n')])).toMatch(/: line 1: env name CFN_TASK belongs to the engine/);
    expect(usage(['--tasks', f, '--tasks-format', 'csv'])).toBe('--tasks-format must be lines, jsonl or auto (got "csv")');
    expect(usage(['--agents', '2', '--tasks-format', 'lines'])).toBe('--tasks-format needs --tasks');
  });
});
