// The image recipes: the Dockerfile and scripts/image/build.sh install the
// same Debian packages and app files; build.sh validates its input; the pause
// program really sleeps until a signal.
import { describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './tools.js';

const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
const packages = readFileSync(join(REPO, 'scripts/image/packages.txt'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const build = (...args: string[]) => spawnSync('bash', [join(REPO, 'scripts/image/build.sh'), ...args], { encoding: 'utf8' });

describe('Dockerfile', () => {
  it('installs exactly the packages of scripts/image/packages.txt in the image, and a C compiler in the build stage only', () => {
    const installs = [...dockerfile.matchAll(/apt-get install -y --no-install-recommends ([^\\\n]+)/g)].map((m) => m[1]!.trim().split(/\s+/).sort());
    expect(installs).toEqual([['gcc', 'libc6-dev'], [...packages].sort()]);
    // The agent launcher is compiled (statically) in the build stage; the image's bash/ comes from there.
    expect(dockerfile).toMatch(/^COPY --from=build \/src\/bash \.\/bash$/m);
  });

  it('takes its Node base from a build argument, runs as 65532 with cfn as the entrypoint', () => {
    expect(dockerfile).toMatch(/^ARG NODE_BASE=node:22-bookworm-slim$/m);
    expect(dockerfile.match(/^FROM \$\{NODE_BASE\}/gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/^USER 65532:65532$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["cfn"\]$/m);
  });

  it('copies the app build.sh stages, and .dockerignore lets each through', () => {
    // Every source of every COPY from the context (the last word is the destination).
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/).slice(0, -1)).map((p) => p.replace(/\/$/, ''));
    for (const dir of ['bin', 'bash', 'config', 'crds', 'package.json', 'package-lock.json', 'operator']) expect(copied).toContain(dir);
    const ignore = readFileSync(join(REPO, '.dockerignore'), 'utf8');
    for (const p of copied) expect(ignore).toContain(`!${p}`);
    const script = readFileSync(join(REPO, 'scripts/image/build.sh'), 'utf8');
    expect(script).toContain('"$ROOT/package.json" "$ROOT/bin" "$ROOT/bash" "$ROOT/config" "$ROOT/crds"');
  });
});

describe('scripts/image/build.sh', () => {
  it('--help exits 0 with usage', () => {
    const r = build('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: scripts/image/build.sh');
  });

  it.each([
    [['--tag', 'no-tag'], "--tag: expected NAME:TAG, got 'no-tag'"],
    [['--tag', 'swarm-operator:latest'], '--tag: use a tag other than latest'],
    [['--pause-tag', 'Bad Name:1'], "--pause-tag: expected NAME:TAG, got 'Bad Name:1'"],
    [['--frobnicate'], 'unknown argument: --frobnicate'],
  ])('rejects %j', (args, message) => {
    const r = build(...args);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(message);
  });
});

describe('pause.c', () => {
  it('builds static, sleeps, and exits 0 on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pause-'));
    try {
      const bin = join(dir, 'pause');
      const cc = spawnSync('gcc', ['-static', '-Os', '-Wall', '-Wextra', '-Werror', '-o', bin, join(REPO, 'scripts/image/pause.c')], { encoding: 'utf8' });
      expect(cc.stderr).toBe('');
      expect(spawnSync('file', [bin], { encoding: 'utf8' }).stdout).toContain('statically linked');
      const started = Date.now();
      const child = spawn(bin, [], { stdio: ['ignore', 'ignore', 'pipe'] });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      setTimeout(() => child.kill('SIGTERM'), 300);
      expect(await exited).toBe(0);
      // It was still sleeping when the signal came.
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
