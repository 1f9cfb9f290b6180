// One version for the package, the chart, the image and the CRDs, with a
// changelog entry; and the order of versions the CRD upgrade relies on.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ANNOTATION_RELEASE, generateCrds } from '../../../operator/api/crds.js';
import { compareVersions, releaseVersion } from '../../../operator/util/release-version.js';
import { CHART, REPO } from './tools.js';

const read = (rel: string) => readFileSync(join(REPO, rel), 'utf8');

describe('the release version', () => {
  const v = releaseVersion();

  it('is package.json version, the chart version and appVersion, and kustomize image tag', () => {
    expect(v).toBe((JSON.parse(read('package.json')) as { version: string }).version);
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
    expect(chart).toMatchObject({ version: v, appVersion: v });
    const kustomize = parse(read('config/manager/kustomization.yaml')) as { images: Array<{ newTag: string }> };
    expect(kustomize.images.map((i) => i.newTag)).toEqual([v]);
    expect(read('config/manager/manager.yaml')).toContain(`value: swarm-operator:${v}`);
  });

  it('annotates every generated CRD', () => {
    for (const crd of generateCrds()) expect((crd.metadata as { annotations: Record<string, string> }).annotations[ANNOTATION_RELEASE]).toBe(v);
  });

  it('has a changelog section with upgrade notes', () => {
    const changelog = read('CHANGELOG.md');
    const section = changelog.split(/^## /m).find((s) => s.startsWith(`${v}\n`));
    expect(section).toBeDefined();
    expect(section).toMatch(/^### Upgrading/m);
  });
});

describe('compareVersions', () => {
  it('orders by major, minor, patch, a prerelease below its release', () => {
    expect(compareVersions('0.2.0', '0.1.9')).toBe(1);
    expect(compareVersions('0.10.0', '0.9.0')).toBe(1);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect(compareVersions('1.0.0-rc.1', '1.0.0')).toBe(-1);
    expect(compareVersions('1.0.0', '1.0.0-rc.1')).toBe(1);
    expect(compareVersions('0.1.0', '0.2.0')).toBe(-1);
  });

  it('refuses what is not a version', () => {
    expect(compareVersions('v0.2.0', '0.1.0')).toBeUndefined();
    expect(compareVersions('0.2', '0.1.0')).toBeUndefined();
    expect(compareVersions('latest', '0.1.0')).toBeUndefined();
  });
});
