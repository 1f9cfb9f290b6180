// The shipped config/ directory sits at the package root, found the same way
// the V2 side finds bash/ (works from the sources and from dist/).
import { join } from 'node:path';
import { findPackageRoot } from '../util/package-root.js';

let cached: string | undefined;

export function packageRoot(): string {
  return (cached ??= findPackageRoot(import.meta.url));
}

/** Absolute path of a file shipped in the package's config/ directory. */
export function shippedConfigPath(name: string): string {
  return join(packageRoot(), 'config', name);
}
