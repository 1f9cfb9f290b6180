// The Argo CD health checks of config/argocd (Lua, as Argo CD runs them:
// lua5.1, gopher-lua's dialect) over objects captured from the real API server
// in every phase (test/integration/gitops/kstatus.test.ts, CAPTURE_TESTDATA=1),
// each case written as Argo CD's own health_test.yaml cases are.
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { kubectlBin, parseObjects, run } from '../packaging/tools.js';
import { runHealthScript, toLua } from './lua-object.js';

const HEALTH = join(import.meta.dirname, '../../../config/argocd/health');
const healthTests = z.object({
  tests: z
    .array(
      z.object({
        healthStatus: z.object({ status: z.enum(['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing', 'Unknown']), message: z.string() }),
        inputPath: z.string(),
      }),
    )
    .min(1),
});

const kinds = readdirSync(HEALTH).flatMap((group) => readdirSync(join(HEALTH, group)).map((kind) => ({ group, kind, dir: join(HEALTH, group, kind) })));

it('lua5.1 is installed (scripts/install-system-deps.sh)', () => {
  expect(execFileSync('lua5.1', ['-e', 'io.write(_VERSION)'], { encoding: 'utf8' })).toBe('Lua 5.1');
});

it('a check for each kind of the operator', () => {
  expect(kinds.map((k) => `${k.group}/${k.kind}`).sort()).toEqual(['swarm.cfn.dev/RolloutPolicy', 'swarm.cfn.dev/Swarm']);
});

describe.each(kinds)('$group/$kind health.lua', ({ dir }) => {
  const cases = healthTests.parse(parse(readFileSync(join(dir, 'health_test.yaml'), 'utf8'))).tests;

  it('has a case for every captured object', () => {
    expect(cases.map((c) => c.inputPath).sort()).toEqual(
      readdirSync(join(dir, 'testdata'))
        .map((f) => `testdata/${f}`)
        .sort(),
    );
  });

  it.each(cases)('$inputPath -> $healthStatus.status', ({ inputPath, healthStatus }) => {
    const obj = parse(readFileSync(join(dir, inputPath), 'utf8')) as unknown;
    expect(runHealthScript(join(dir, 'health.lua'), obj)).toEqual(healthStatus);
  });
});

it('config/argocd renders the argocd-cm snippet: one resource.customizations.health key per kind, the scripts tested here', () => {
  const [cm, ...rest] = parseObjects(run(kubectlBin(), ['kustomize', join(HEALTH, '..')]));
  expect(rest).toEqual([]);
  expect(cm).toMatchObject({ kind: 'ConfigMap', metadata: { name: 'argocd-cm', namespace: 'argocd', labels: { 'app.kubernetes.io/part-of': 'argocd' } } });
  const data = (cm as unknown as { data: Record<string, string> }).data;
  expect(Object.keys(data).sort()).toEqual(kinds.map((k) => `resource.customizations.health.${k.group}_${k.kind}`).sort());
  for (const k of kinds) expect(data[`resource.customizations.health.${k.group}_${k.kind}`]).toBe(readFileSync(join(k.dir, 'health.lua'), 'utf8'));
});

describe('toLua', () => {
  it('writes strings Lua reads back byte for byte', () => {
    const s = 'quote " backslash \\ newline \n tab \t nul \0 ünïcode';
    const out = execFileSync('lua5.1', ['-e', `io.write(${toLua(s)})`], { encoding: 'utf8' });
    expect(out).toBe(s);
  });
});
