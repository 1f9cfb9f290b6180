// `kubectl explain` on the real API server (the CRDs' published OpenAPI):
// every field of swarm.spec and rolloutpolicy.spec, at every level, comes
// with a description.
import { beforeAll, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
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

it.each([
  ['swarm.spec', 10],
  ['swarm.spec.agent', 9],
  ['swarm.spec.agent.env', 3],
  ['swarm.spec.agent.resources', 2],
  ['swarm.spec.coordination', 3],
  ['swarm.spec.v2', 3],
  ['swarm.spec.results', 2],
  ['swarm.spec.rolloutPolicyRef', 1],
  ['rolloutpolicy.spec', 7],
  ['rolloutpolicy.spec.steps', 2],
  ['rolloutpolicy.spec.gates', 5],
])('kubectl explain %s: %i fields, each described', (path, count) => {
  const f = fields(explain(path));
  expect(f).toHaveLength(count);
  expect(f.filter(([, d]) => d === '').map(([name]) => name)).toEqual([]);
});
