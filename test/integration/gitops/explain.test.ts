// `kubectl explain` on the real API server (the CRDs' published OpenAPI):
// every field of swarm.spec and rolloutpolicy.spec, at every level, comes
// with a description.
import { beforeAll, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { generateCrds } from '../../../operator/api/crds.js';
import { kubectlBin } from '../../unit/packaging/tools.js';
import { client, installCrds, waitFor } from '../operator/harness.js';

const explain = (path: string) => execFileSync(kubectlBin(), ['--kubeconfig', process.env.KUBECONFIG ?? '', 'explain', path], { encoding: 'utf8' });

/** Each field kubectl lists, with the first line of its description ('' when none). */
function fields(text: string): Array<[string, string]> {
  const lines = text.slice(text.indexOf('\nFIELDS:\n') + 9).split('\n');
  const out: Array<[string, string]> = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^ {2}(\S+)\t<([^>]+)>/.exec(lines[i]!);
    if (!m) continue;
    let j = i + 1;
    while (lines[j]?.startsWith('  enum:')) j++;
    out.push([m[1]!, /^ {4}\S/.test(lines[j] ?? '') ? lines[j]!.trim() : '']);
  }
  return out;
}

beforeAll(async () => {
  await installCrds(client());
  // The OpenAPI of a CRD just applied is published a moment later.
  await waitFor('explain swarm.spec', () => (explain('swarm.spec').includes('Desired swarm') ? true : undefined), 30_000, 500);
});

type Schema = { properties?: Record<string, Schema>; items?: Schema };

/** The property names the generated CRD declares at `path` (kind.field.field...), array items looked through. */
function declared(path: string): string[] {
  const [kind, ...steps] = path.split('.');
  const crd = generateCrds().find((c) => (c.spec as { names: { singular: string } }).names.singular === kind)!;
  let schema = (crd.spec as { versions: Array<{ schema: { openAPIV3Schema: Schema } }> }).versions[0]!.schema.openAPIV3Schema;
  for (const step of steps) {
    schema = schema.properties![step]!;
    if (schema.items) schema = schema.items;
  }
  return Object.keys(schema.properties ?? {}).sort();
}

it.each([
  'swarm.spec',
  'swarm.spec.agent',
  'swarm.spec.agent.env',
  'swarm.spec.agent.resources',
  'swarm.spec.coordination',
  'swarm.spec.v2',
  'swarm.spec.results',
  'swarm.spec.rolloutPolicyRef',
  'rolloutpolicy.spec',
  'rolloutpolicy.spec.steps',
  'rolloutpolicy.spec.gates',
])('kubectl explain %s: every declared field, each described', (path) => {
  const f = fields(explain(path));
  expect(f.map(([name]) => name).sort()).toEqual(declared(path));
  expect(f.filter(([, d]) => d === '').map(([name]) => name)).toEqual([]);
});
