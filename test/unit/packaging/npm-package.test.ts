// The published package holds every file its launchers run: `npm pack` (dry
// run) lists what would ship, and each path bin/*.js joins onto the package
// root is in it (dist/ only once built, which a source checkout may not be).
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { REPO } from './tools.js';

const packSchema = z.array(z.object({ files: z.array(z.object({ path: z.string() })) })).length(1);

function packedFiles(): Set<string> {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return new Set(packSchema.parse(JSON.parse(out))[0]!.files.map((f) => f.path));
}

/** Paths a launcher joins onto the package root: `join(root, 'scripts/x.sh')`. */
function launcherPaths(): string[] {
  const paths: string[] = [];
  for (const file of readdirSync(join(REPO, 'bin'))) {
    const text = readFileSync(join(REPO, 'bin', file), 'utf8');
    for (const m of text.matchAll(/join\(root, '([^']+)'\)/g)) paths.push(m[1]!);
  }
  return paths;
}

describe('the npm package', () => {
  const files = packedFiles();

  it('ships the launchers, the engine, the configs and the CRDs', () => {
    for (const f of [
      'bin/cfn.js',
      'bin/kubectl-swarm.js',
      'bash/coordinator-cli.sh',
      'bash/lib/agent.sh',
      'config/v2-config.json',
      'config/performance-limits.json',
    ]) {
      expect(files).toContain(f);
    }
    expect([...files].some((f) => f.startsWith('crds/'))).toBe(true);
    expect([...files].filter((f) => f.startsWith('test/'))).toEqual([]);
  });

  it('ships every file the launchers run (scripts/ensure-node.sh)', () => {
    const paths = launcherPaths();
    expect(paths).toContain('scripts/ensure-node.sh');
    for (const p of paths.filter((p) => !p.startsWith('dist/'))) expect(files).toContain(p);
  });
});
