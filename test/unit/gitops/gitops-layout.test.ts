// config/gitops: the Flux and Argo CD objects point at directories of this
// repository that kustomize renders, the operator's first, and Flux waits on
// health (kstatus) for both. The loop itself on a real API server:
// test/integration/gitops/gitops-flow.test.ts.
import { expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { rolloutPolicy } from '../../../operator/api/rollout-policy.js';
import { kubectlBin, parseObjects, REPO, run } from '../packaging/tools.js';

const render = (dir: string) =>
  parseObjects(run(kubectlBin(), ['kustomize', join(REPO, dir)])) as unknown as Array<{
    kind: string;
    metadata: { name: string };
    spec: Record<string, unknown>;
  }>;

it('Flux: a source, the operator, then the rollout, each waited on; paths that exist', () => {
  const objs = render('config/gitops/flux');
  // kustomize orders by kind, then name.
  expect(objs.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
    'Kustomization/swarm-operator',
    'Kustomization/swarm-rollout',
    'GitRepository/swarm-operator',
  ]);
  for (const k of objs.filter((o) => o.kind === 'Kustomization')) {
    expect(k.spec).toMatchObject({ wait: true, sourceRef: { kind: 'GitRepository', name: 'swarm-operator' } });
    expect(existsSync(join(REPO, String(k.spec.path), 'kustomization.yaml'))).toBe(true);
  }
  expect(objs[1]!.spec.dependsOn).toEqual([{ name: 'swarm-operator' }]);
});

it('Argo CD: the operator in wave 0, the rollout in wave 1; paths that exist', () => {
  const apps = render('config/gitops/argocd') as unknown as Array<{
    metadata: { name: string; annotations: Record<string, string> };
    spec: { source: { path: string } };
  }>;
  expect(apps.map((a) => [a.metadata.name, a.metadata.annotations['argocd.argoproj.io/sync-wave']])).toEqual([
    ['swarm-operator', '0'],
    ['swarm-rollout', '1'],
  ]);
  for (const a of apps) expect(existsSync(join(REPO, a.spec.source.path, 'kustomization.yaml'))).toBe(true);
});

it('the rollout directory renders one valid RolloutPolicy', () => {
  const [policy, ...rest] = render('config/gitops/rollout');
  expect(rest).toEqual([]);
  expect(rolloutPolicy.parse(policy).spec).toMatchObject({ v2Percentage: 10, default: true });
});
