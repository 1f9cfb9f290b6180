// The shipped config/ directory sits at the package root, which is two levels up
// from operator/config in the sources but three from dist/operator/config: find
// it by walking up to our own package.json instead of hard-coding the depth.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const parsed = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown };
        if (parsed.name === 'swarm-operator') return (cached = dir);
      } catch {
        // not ours; keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the swarm-operator package root (package.json)');
    dir = parent;
  }
}

/** Absolute path of a file shipped in the package's config/ directory. */
export function shippedConfigPath(name: string): string {
  return join(packageRoot(), 'config', name);
}
