// `kubectl apply -k config/default` on a real API server: every object is
// accepted and the operator's ServiceAccount gets exactly the generated rules.
// The CRDs are left out of apply and delete (other tests' Swarms use them).
import { afterAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { execFileSync } from 'node:child_process';
import { operatorRules, ruleSet } from '../../../operator/rbac/operator-rbac.js';
import { client, waitFor } from '../operator/harness.js';
import { kubectlBin, parseObjects, REPO, run } from '../../unit/packaging/tools.js';
import type { PolicyRule } from '../../../operator/rbac/operator-rbac.js';

const c = client();
const objects = parseObjects(run(kubectlBin(), ['kustomize', join(REPO, 'config/default')])).filter((o) => o.kind !== 'CustomResourceDefinition');
const manifest = objects.map((o) => stringify(o)).join('---\n');
const kubectl = (args: string[]) =>
  execFileSync(kubectlBin(), ['--kubeconfig', process.env.KUBECONFIG ?? '', ...args], { input: manifest, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
const flat = (rules: PolicyRule[]) => [...ruleSet(rules)].map(([k, v]) => `${k}:${[...v].sort().join(',')}`).sort();
let applied = false;

afterAll(() => {
  if (applied) kubectl(['delete', '-f', '-', '--ignore-not-found', '--wait=false']);
});

describe('config/default on a real API server', () => {
  it('applies cleanly and binds the generated rules to the operator ServiceAccount', async () => {
    const out = kubectl(['apply', '-f', '-']);
    applied = true;
    expect(out).toContain('deployment.apps/swarm-operator created');
    const role = await c.get<{ rules: PolicyRule[] }>('/apis/rbac.authorization.k8s.io/v1/clusterroles/swarm-operator');
    expect(flat(role.rules)).toEqual(flat(operatorRules()));
    const binding = await c.get<{ subjects: Array<{ name: string; namespace: string }> }>(
      '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/swarm-operator',
    );
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'swarm-operator', namespace: 'swarm-operator-system' }]);
    await waitFor('ServiceAccount', () => c.get('/api/v1/namespaces/swarm-operator-system/serviceaccounts/swarm-operator'));
    // The Deployment passes the namespace's restricted Pod Security admission: its pod is created.
    await waitFor(
      'operator pod admitted',
      async () => (await c.get<{ items: unknown[] }>('/api/v1/namespaces/swarm-operator-system/pods')).items.length > 0 || undefined,
      30_000,
      200,
    );
  });
});
