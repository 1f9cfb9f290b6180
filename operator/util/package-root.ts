// Finds the package root (where bash/ and config/ live) from a module URL,
// whether the code runs from source (operator/...) or compiled (dist/operator/...).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function findPackageRoot(fromUrl: string, packageName = 'swarm-operator'): string {
  let dir = dirname(fileURLToPath(fromUrl));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const parsed = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown };
        if (parsed.name === packageName) return dir;
      } catch {
        // not ours or unreadable: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the ${packageName} package root above ${fileURLToPath(fromUrl)}`);
    dir = parent;
  }
}

let cached: string | undefined;

/** This package's root (cached). */
export function packageRoot(): string {
  return (cached ??= findPackageRoot(import.meta.url));
}

/** Absolute path of a file shipped in the package's config/ directory. */
export function shippedConfigPath(name: string): string {
  return join(packageRoot(), 'config', name);
}
