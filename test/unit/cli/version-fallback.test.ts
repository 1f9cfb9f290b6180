// `cfn run` version choice and V2 -> V1 fallback, with real failures: a
// read-only tmpfs as shm path, no bash on PATH, a preflight that hangs. Each
// falls back within 5 s and the run completes on V1; with --no-fallback each
// is one error line and exit code 3.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideRunVersion } from '../../../operator/coordination/version/decide-version.js';
import { runCli } from '../../../operator/cli/main.js';
import { runCommand } from '../../../operator/cli/run-command.js';
import { parseRunOptions } from '../../../operator/cli/run-options.js';
import type { RunSummary } from '../../../operator/cli/summary.js';
import { EventBus } from '../../../operator/coordination/v1/event-bus.js';
import type { SwarmEvents } from '../../../operator/coordination/v1/event-bus.js';
import { detectVersion } from '../../../operator/coordination/version/decide-version.js';
import { createLogger } from '../../../operator/observability/logger.js';
import { captureIo } from '../../helpers/capture.js';

jest.setTimeout(60_000);

const REPO = join(import.meta.dirname, '..', '..', '..');

let dir: string;
let shm: string;
let roMount: string;
let seq = 0;
const logger = createLogger({ name: 'cfn-test', level: 'silent' });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cfn-cli-fallback-'));
  shm = mkdtempSync('/dev/shm/cfn-test-cli-fb-');
  // A tiny read-only tmpfs: V2's preflight must find it unwritable (we are root,
  // so a chmod would not stop us; a read-only mount does).
  roMount = join(dir, 'ro-shm');
  mkdirSync(roMount);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k,mode=0755', 'tmpfs', roMount]);
});

afterAll(() => {
  try {
    execFileSync('umount', [roMount]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  }
});

interface Outcome {
  code: number;
  out: string;
  err: string;
  json: RunSummary;
  events: Array<SwarmEvents['coordination:fallback']>;
  wallMs: number;
  memoryPath: string;
}

/** parseRunOptions + runCommand in-process, with a bus to observe `coordination:fallback`. */
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  seq += 1;
  const memoryPath = join(dir, `memory-${seq}.sqlite`);
  const io = captureIo({ ...process.env, CFN_SHM_PATH: shm, ...env });
  const bus = new EventBus();
  const events: Outcome['events'] = [];
  bus.subscribe('coordination:fallback', (e) => events.push(e));
  const o = parseRunOptions(['--json', '--memory-path', memoryPath, '--swarm-id', `fb-${process.pid}-${seq}`, ...args]);
  const started = Date.now();
  const code = await runCommand(o, io, logger, { bus });
  return { code, out: io.out.text, err: io.err.text, json: JSON.parse(io.out.text) as RunSummary, events, wallMs: Date.now() - started, memoryPath };
}

function expectFallback(x: Outcome, reason: RegExp): void {
  expect(x.code).toBe(0);
  expect(x.json).toMatchObject({ status: 'completed', version: 'v1', deliveryRate: 100, agents: { total: 3, completed: 3, failed: 0 } });
  expect(x.json.fallback).toEqual({ from: 'v2', to: 'v1', reason: expect.stringMatching(reason), elapsedMs: expect.any(Number) });
  expect(x.json.fallback?.elapsedMs).toBeLessThan(5000);
  expect(x.events).toEqual([{ from: 'v2', to: 'v1', reason: x.json.fallback?.reason, timestamp: expect.any(Number) }]);
  // The user line, once, and nothing else on stderr.
  expect(x.err).toBe(`cfn: V2 unavailable (${x.json.fallback?.reason}), using V1 fallback\n`);
  // V1 really ran: its SQLite memory holds the run.
  expect(existsSync(x.memoryPath)).toBe(true);
}

function expectNoFallback(x: Outcome, reason: RegExp): void {
  expect(x.code).toBe(3);
  expect(x.err).toMatch(/^cfn: V2 coordinator failed to start: [^\n]+ \(--no-fallback: not falling back to V1\)\n$/);
  expect(x.err).toMatch(reason);
  expect(x.json).toMatchObject({ status: 'failed', version: 'v2', error: expect.stringMatching(reason) });
  expect(x.json.fallback).toBeUndefined();
  expect(x.events).toEqual([]);
  // V1 never started.
  expect(existsSync(x.memoryPath)).toBe(false);
}

/** A PATH directory with cat and true but no bash. */
function pathWithoutBash(): string {
  const bin = join(dir, 'no-bash-bin');
  if (!existsSync(bin)) {
    mkdirSync(bin);
    for (const tool of ['cat', 'true']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
  }
  return bin;
}

/** A `bash` that records its pid and its sleeping child's, sleeps 20 s, then execs the real bash. */
function slowBashDir(name: string): { bin: string; pids: string } {
  const bin = join(dir, name);
  mkdirSync(bin);
  const pids = join(bin, 'pids');
  writeFileSync(join(bin, 'bash'), `#!/bin/sh\nsleep 20 &\necho "$$ $!" >> '${pids}'\nwait\nexec /bin/bash "$@"\n`);
  chmodSync(join(bin, 'bash'), 0o755);
  return { bin, pids };
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('cfn run: V2 -> V1 fallback on real failures', () => {
  it('shm path on a read-only tmpfs (COORDINATION_VERSION=v2 from the environment)', async () => {
    const x = await run(['--agents', '3', '--agent-command', 'true', '--shm-path', roMount], { COORDINATION_VERSION: 'v2' });
    expectFallback(x, new RegExp(`${roMount}.*(not writable|read-only)`, 'i'));
    expect(x.json.versionReason).toBe('COORDINATION_VERSION=v2');
    const y = await run(['--agents', '3', '--agent-command', 'true', '--shm-path', roMount, '--no-fallback'], { COORDINATION_VERSION: 'v2' });
    expectNoFallback(y, new RegExp(roMount));
  });

  it('bash missing from PATH', async () => {
    const PATH = pathWithoutBash();
    const x = await run(['--agents', '3', '--agent-command', 'true', '--version', 'v2'], { PATH });
    expectFallback(x, new RegExp(`^bash not found: no executable "bash" on PATH=${PATH}$`));
    expect(x.json.versionReason).toBe('--version=v2');
    const y = await run(['--agents', '3', '--agent-command', 'true', '--version', 'v2', '--no-fallback'], { PATH });
    expectNoFallback(y, /bash not found/);
  });

  it('preflight hanging past fallbackTimeout (--config): falls back, and no process of that preflight survives', async () => {
    const config = join(dir, 'claude-flow.config.json');
    writeFileSync(config, JSON.stringify({ coordination: { version: 'v2', fallbackTimeout: 300 } }));
    const slow = slowBashDir('slow-bash');
    const x = await run(['--agents', '3', '--agent-command', 'true', '--config', config], { PATH: `${slow.bin}:${process.env.PATH ?? ''}` });
    expectFallback(x, /^V2 start took longer than 300 ms$/);
    expect(x.json.versionReason).toBe(`coordination.version=v2 (${config})`);
    const pids = readFileSync(slow.pids, 'utf8').trim().split(/\s+/).map(Number);
    expect(pids).toHaveLength(2);
    expect(pids.filter(alive)).toEqual([]);

    const slow2 = slowBashDir('slow-bash-2');
    const y = await run(['--agents', '3', '--agent-command', 'true', '--config', config, '--no-fallback'], { PATH: `${slow2.bin}:${process.env.PATH ?? ''}` });
    expectNoFallback(y, /V2 start took longer than 300 ms/);
    expect(y.wallMs).toBeLessThan(5000);
    expect(readFileSync(slow2.pids, 'utf8').trim().split(/\s+/).map(Number).filter(alive)).toEqual([]);
  });
});

describe('cfn run: version choice', () => {
  it('--version beats the environment; the JSON says which version ran and why', async () => {
    const x = await run(['--agents', '2', '--agent-command', 'true', '--version', 'v1'], { COORDINATION_VERSION: 'v2' });
    expect(x.code).toBe(0);
    expect(x.json).toMatchObject({ version: 'v1', versionReason: '--version=v1', status: 'completed' });
    expect(x.err).toBe('');
    const y = await run(['--agents', '2', '--agent-command', 'true', '--version', 'v2'], { COORDINATION_VERSION: 'v1' });
    expect(y.json).toMatchObject({ version: 'v2', versionReason: '--version=v2', status: 'completed' });
    expect(y.json.fallback).toBeUndefined();
    expect(existsSync(y.memoryPath)).toBe(false);
  });

  it('--version auto runs V2 when its preflight passes, V1 with the reason when not', async () => {
    const x = await run(['--agents', '2', '--agent-command', 'true', '--version', 'auto']);
    expect(x.json).toMatchObject({ version: 'v2', versionReason: expect.stringMatching(/^--version=auto: V2 preflight passed/) });
    const y = await run(['--agents', '2', '--agent-command', 'true', '--version', 'auto', '--shm-path', roMount]);
    expect(y.json).toMatchObject({ version: 'v1', versionReason: expect.stringMatching(/^--version=auto: V2 preflight failed \(.*not writable/) });
    expect(y.json.fallback).toBeUndefined();
  });

  it('with no version anywhere, cfn run means auto (V2 where it can run); the config and the env still decide when set', () => {
    const o = (...extra: string[]) => parseRunOptions(['--agents', '1', '--swarm-id', 'd-1', ...extra]);
    expect(decideRunVersion(o(), { CFN_SHM_PATH: shm, PATH: process.env.PATH }, {}, undefined)).toEqual({
      version: 'v2',
      reason: expect.stringMatching(/^cfn run default auto: V2 preflight passed \(/),
    });
    expect(decideRunVersion(o('--shm-path', roMount), { PATH: process.env.PATH }, {}, undefined)).toEqual({
      version: 'v1',
      reason: expect.stringMatching(/^cfn run default auto: V2 preflight failed \(.*not writable/),
    });
    expect(decideRunVersion(o(), { CFN_SHM_PATH: shm, PATH: pathWithoutBash() }, {}, undefined)).toEqual({
      version: 'v1',
      reason: `cfn run default auto: V2 preflight failed (bash not found on PATH=${pathWithoutBash()})`,
    });
    expect(decideRunVersion(o(), { CFN_SHM_PATH: shm }, { version: 'v1' }, 'c.json')).toEqual({ version: 'v1', reason: 'coordination.version=v1 (c.json)' });
    expect(decideRunVersion(o(), { COORDINATION_VERSION: 'v1' }, {}, undefined)).toEqual({ version: 'v1', reason: 'COORDINATION_VERSION=v1' });
    expect(decideRunVersion(o(), { V2_ROLLOUT_PERCENTAGE: '0' }, {}, undefined)).toMatchObject({ version: 'v1', reason: expect.stringMatching(/^rollout 0%/) });
  });

  it('--rollout-percentage 10 routes 8-12% of 1000 swarm ids to V2, the same ids as V2_ROLLOUT_PERCENTAGE=10 (cross-process stable, see decide-version.test)', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `swarm-${i}`);
    const viaFlag = ids.map((id) =>
      decideRunVersion(parseRunOptions(['--agents', '1', '--swarm-id', id, '--rollout-percentage', '10']), { COORDINATION_VERSION: 'v1' }, {}, undefined),
    );
    const v2 = viaFlag.filter((d) => d.version === 'v2').length;
    expect(v2).toBeGreaterThanOrEqual(80);
    expect(v2).toBeLessThanOrEqual(120);
    expect(viaFlag.map((d) => d.version)).toEqual(ids.map((id) => detectVersion({ id, env: { V2_ROLLOUT_PERCENTAGE: '10' } }).version));
    expect(viaFlag[0]?.reason).toMatch(/^--rollout-percentage 10%: bucket \d+ (<|>=) 10$/);
  });

  it('bad settings are usage errors (exit 2, one line): --version value, both flags, a missing --config, a bad env value', async () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['--version', 'v3'], {}, /--version must be v1, v2 or auto/],
      [['--version', 'v1', '--rollout-percentage', '5'], {}, /either --version or --rollout-percentage/],
      [['--rollout-percentage', '101'], {}, /--rollout-percentage must be a number from 0 to 100/],
      [['--config', join(dir, 'missing.json')], {}, /missing\.json: file not found/],
      [[], { COORDINATION_VERSION: 'v9' }, /COORDINATION_VERSION: expected v1 or v2/],
    ];
    for (const [args, env, message] of cases) {
      const { out, err, ...io } = captureIo({ ...process.env, CFN_SHM_PATH: shm, ...env });
      const code = await runCli(['run', '--agents', '1', '--memory-path', join(dir, 'never.sqlite'), ...args], io);
      expect({ args, code }).toEqual({ args, code: 2 });
      expect(err.text).toMatch(/^cfn: [^\n]+\n$/);
      expect(err.text).toMatch(message);
      expect(out.text).toBe('');
    }
    expect(existsSync(join(dir, 'never.sqlite'))).toBe(false);
  });
});

describe('bin/cfn.js', () => {
  it('a V1 run prints no SQLite ExperimentalWarning; other warnings still show', () => {
    if (!existsSync(join(REPO, 'dist/operator/cli/main.js')))
      execFileSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.build.json')]);
    const r = spawnSync(
      process.execPath,
      [join(REPO, 'bin/cfn.js'), 'run', '--agents', '2', '--version', 'v1', '--json', '--agent-command', 'true', '--memory-path', join(dir, 'bin.sqlite')],
      {
        encoding: 'utf8',
        env: { ...process.env, LOG_LEVEL: 'warn' },
        timeout: 30_000,
      },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ version: 'v1', status: 'completed' });
    // The filter drops only that one warning.
    const other = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `process.argv[2]='--help'; await import(${JSON.stringify(join(REPO, 'bin/cfn.js'))}); process.emitWarning('kept', 'DeprecationWarning');`,
      ],
      { encoding: 'utf8' },
    );
    expect(other.stderr).toMatch(/DeprecationWarning: kept/);
  });
});
