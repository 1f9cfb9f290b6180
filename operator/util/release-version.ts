// The release this code belongs to: package.json's version, the one version
// of the project (the chart's version and appVersion and the image tag follow it).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { packageRoot } from './package-root.js';

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?$/;

const packageJson = z.object({ version: z.string().regex(SEMVER, 'a semantic version (MAJOR.MINOR.PATCH)') });

let cached: string | undefined;

/** This release's version, e.g. "0.2.0". */
export function releaseVersion(): string {
  return (cached ??= packageJson.parse(JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8'))).version);
}

/** Orders two semantic versions (prerelease below its release, compared as text); undefined when either is not one. */
export function compareVersions(a: string, b: string): number | undefined {
  const x = SEMVER.exec(a);
  const y = SEMVER.exec(b);
  if (!x || !y) return undefined;
  for (let i = 1; i <= 3; i++) {
    const d = Number(x[i]) - Number(y[i]);
    if (d !== 0) return Math.sign(d);
  }
  const [px, py] = [x[4], y[4]];
  if (px === py) return 0;
  if (px === undefined) return 1;
  if (py === undefined) return -1;
  return px < py ? -1 : 1;
}
