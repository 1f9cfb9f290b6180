// engine-preflight.ts: finding bash and the engine scripts, reading what
// `health-monitor.sh preflight --json` printed, and running (and cancelling)
// the real preflight.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  CoordinatorUnavailableError,
  EnginePreflight,
  locateEngine,
  preflightReport,
  resolveExecutable,
} from '../../../../operator/coordination/v2/engine-preflight.js';
import { findPackageRoot } from '../../../../operator/util/package-root.js';
import { readProc } from '../../../../operator/util/proc.js';

jest.setTimeout(60_000);

const bashDir = join(findPackageRoot(import.meta.url), 'bash');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp('/dev/shm/cfn-test-preflight-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('resolveExecutable', () => {
  it('a name on the PATH, an explicit path (made absolute); never a directory or a file that is not executable', async () => {
    const exe = join(dir, 'tool');
    await writeFile(exe, '#!/bin/sh\n');
    await chmod(exe, 0o755);
    const plain = join(dir, 'plain');
    await writeFile(plain, '');
    expect(await resolveExecutable('tool', `/nonexistent::${dir}`)).toBe(exe);
    expect(await resolveExecutable('tool', '/nonexistent')).toBeUndefined();
    expect(await resolveExecutable('tool', undefined)).toBeUndefined();
    expect(await resolveExecutable(exe, undefined)).toBe(exe);
    expect(await resolveExecutable(`./${relative(process.cwd(), exe)}`, undefined)).toBe(exe);
    expect(await resolveExecutable(dir, undefined)).toBeUndefined();
    expect(await resolveExecutable(plain, undefined)).toBeUndefined();
  });
});

describe('locateEngine', () => {
  it('the bash path when bash and the scripts are there; else the precise reason', async () => {
    expect(await locateEngine({ bashName: 'bash', bashDir, env: process.env })).toMatch(/\/bash$/);
    await expect(locateEngine({ bashName: 'bash', bashDir, env: { PATH: '/nonexistent-bin' } })).rejects.toThrow(
      new CoordinatorUnavailableError('bash not found: no executable "bash" on PATH=/nonexistent-bin'),
    );
    await expect(locateEngine({ bashName: 'bash', bashDir, env: {} })).rejects.toThrow('on PATH=(unset)');
    await expect(locateEngine({ bashName: '/nonexistent/bash', bashDir, env: process.env })).rejects.toThrow('bash not executable at /nonexistent/bash');
    await expect(locateEngine({ bashName: 'bash', bashDir: dir, env: process.env })).rejects.toThrow(`engine script missing: ${dir}/coordinator-cli.sh`);
  });
});

describe('preflightReport', () => {
  const healthy = JSON.stringify({ healthy: true, checks: { shm: { ok: true, detail: 'tmpfs' } } });
  it('the report the engine printed (its last stdout line)', () => {
    expect(preflightReport({ exitCode: 0, stdout: `noise\n${healthy}\n`, stderr: '', timedOut: false })).toEqual({
      healthy: true,
      checks: { shm: { ok: true, detail: 'tmpfs' } },
    });
  });

  it('unhealthy: its reason, else the first failing check, else the last stderr line, else the exit code', () => {
    const report = (body: object, exitCode: number, stderr = '') => preflightReport({ exitCode, stdout: JSON.stringify(body), stderr, timedOut: false });
    expect(report({ healthy: false, reason: 'no jq', checks: {} }, 3).reason).toBe('no jq');
    expect(report({ healthy: false, checks: { a: { ok: true, detail: '' }, ulimit: { ok: false, detail: '256 < 1024' } } }, 3).reason).toBe(
      'ulimit: 256 < 1024',
    );
    expect(report({ healthy: false }, 3, 'x\nwhy\n').reason).toBe('why');
    expect(report({ healthy: false }, 3).reason).toBe('preflight exited 3');
    // Says healthy but exits non-zero: not healthy.
    expect(report({ healthy: true }, 1)).toMatchObject({ healthy: false, reason: 'preflight exited 1' });
  });

  it('no report: a timeout, the last stderr line, invalid JSON or the bare exit code, as a failing "preflight" check', () => {
    expect(preflightReport({ exitCode: undefined, stdout: '', stderr: 'late', timedOut: true })).toEqual({
      healthy: false,
      reason: 'preflight timed out after 30 s',
      checks: { preflight: { ok: false, detail: 'preflight timed out after 30 s' } },
    });
    expect(preflightReport({ exitCode: 2, stdout: '', stderr: 'health-monitor: unknown option: --x (see --help)\n', timedOut: false }).reason).toBe(
      'health-monitor: unknown option: --x (see --help)',
    );
    expect(preflightReport({ exitCode: 0, stdout: '{"healthy":', stderr: '', timedOut: false }).reason).toMatch(/^preflight printed invalid JSON \(not JSON/);
    expect(preflightReport({ exitCode: 0, stdout: '{"healthy":"yes"}', stderr: '', timedOut: false }).reason).toMatch(
      /^preflight printed invalid JSON \(healthy:/,
    );
    expect(preflightReport({ exitCode: 9, stdout: '', stderr: '', timedOut: false }).reason).toBe('preflight exited 9 without a report');
  });
});

describe('EnginePreflight', () => {
  it('runs the real preflight: healthy on a tmpfs directory, with the launcher check', async () => {
    const report = await new EnginePreflight({ bashName: 'bash', bashDir, env: process.env, shmPath: join(dir, 'shm') }).run();
    expect(report.healthy).toBe(true);
    expect(report.checks.launcher?.ok).toBe(true);
  });

  it('unhealthy with the reason when bash is missing, without running anything', async () => {
    const report = await new EnginePreflight({ bashName: 'bash', bashDir, env: { PATH: '/nonexistent-bin' }, shmPath: dir }).run();
    expect(report).toEqual({
      healthy: false,
      reason: 'bash not found: no executable "bash" on PATH=/nonexistent-bin',
      checks: { engine: { ok: false, detail: 'bash not found: no executable "bash" on PATH=/nonexistent-bin' } },
    });
  });

  it('cancel(): a preflight in flight ends with everything it started; it reports "stopped during preflight"', async () => {
    // A preflight that hangs: its sleep must not outlive the cancel.
    const fake = join(dir, 'fake-engine');
    await mkdir(fake);
    const pidFile = join(dir, 'sleep.pid');
    await writeFile(join(fake, 'coordinator-cli.sh'), '');
    await writeFile(join(fake, 'health-monitor.sh'), `sleep 30 & echo $! > ${pidFile}; wait\n`);
    const preflight = new EnginePreflight({ bashName: 'bash', bashDir: fake, env: process.env, shmPath: dir });
    const running = preflight.run();
    let sleeper = 0;
    for (let i = 0; i < 500 && !sleeper; i += 1) {
      sleeper = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
      if (!sleeper) await new Promise((r) => setTimeout(r, 10));
    }
    expect(sleeper).toBeGreaterThan(0);
    await preflight.cancel();
    expect(await running).toEqual({ healthy: false, reason: 'stopped during preflight', checks: { preflight: { ok: false, detail: 'stopped' } } });
    const state = (await readProc(sleeper))?.state;
    expect(state === undefined || state === 'Z').toBe(true);
  });
});
