import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateRbacFiles } from '../../../operator/rbac/rbac-files.js';
import {
  ADMISSION_RULES,
  canonicalRules,
  delegatedRules,
  LEADER_ELECTION_RULES,
  leaderElectionRules,
  operatorRules,
  requestToRules,
  ruleSet,
  USED_RULES,
} from '../../../operator/rbac/operator-rbac.js';
import { REPO } from './tools.js';

const flat = (rules: Parameters<typeof ruleSet>[0]) => [...ruleSet(rules)].map(([k, v]) => `${k}:${[...v].sort().join(',')}`).sort();

describe('generated RBAC files', () => {
  it('match operator/rbac (run `npm run gen:rbac` after changing it)', () => {
    for (const [rel, text] of generateRbacFiles()) expect({ file: rel, text: readFileSync(join(REPO, rel), 'utf8') }).toEqual({ file: rel, text });
  });
});

describe('operatorRules', () => {
  it('is what the operator uses, what the coordinator Role delegates and what admission checks, nothing else', () => {
    expect(flat(operatorRules())).toEqual(flat([...USED_RULES, ...delegatedRules(), ...ADMISSION_RULES]));
    expect(flat(leaderElectionRules())).toEqual(flat(LEADER_ELECTION_RULES));
  });

  it('has no wildcard, no secrets, nothing cluster-scoped, no escalate/bind/impersonate', () => {
    const rules = [...operatorRules(), ...leaderElectionRules()];
    const resources = rules.flatMap((r) => r.resources);
    const verbs = rules.flatMap((r) => r.verbs);
    for (const bad of ['*', 'secrets', 'configmaps', 'namespaces', 'nodes', 'clusterroles', 'clusterrolebindings']) expect(resources).not.toContain(bad);
    for (const bad of ['*', 'escalate', 'bind', 'impersonate', 'deletecollection']) expect(verbs).not.toContain(bad);
    expect(rules.flatMap((r) => r.apiGroups)).not.toContain('*');
  });

  it('canonical form merges duplicates and sorts', () => {
    expect(
      canonicalRules([
        { apiGroups: [''], resources: ['pods'], verbs: ['watch', 'get'] },
        { apiGroups: [''], resources: ['pods', 'events'], verbs: ['get'] },
      ]),
    ).toEqual([
      { apiGroups: [''], resources: ['events'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'watch'] },
    ]);
  });
});

describe('requestToRules', () => {
  const one = (method: string, path: string, query: Record<string, unknown> = {}) => {
    const [r] = requestToRules(method, path, query);
    return `${r!.apiGroups[0]}|${r!.resources[0]}:${r!.verbs.join(',')}`;
  };
  it.each([
    ['GET', '/api/v1/namespaces/a/pods', {}, '|pods:list'],
    ['GET', '/api/v1/pods', { watch: true }, '|pods:watch'],
    ['GET', '/api/v1/namespaces/a/pods/p', {}, '|pods:get'],
    ['POST', '/api/v1/namespaces/a/events', {}, '|events:create'],
    ['PATCH', '/api/v1/namespaces/a/events/e', { fieldManager: 'x' }, '|events:patch'],
    ['PATCH', '/apis/rbac.authorization.k8s.io/v1/namespaces/a/roles/r', { fieldManager: 'x', force: true }, 'rbac.authorization.k8s.io|roles:patch,create'],
    ['PATCH', '/apis/swarm.cfn.dev/v1alpha1/namespaces/a/swarms/s/status', { force: true }, 'swarm.cfn.dev|swarms/status:patch'],
    ['PUT', '/apis/coordination.k8s.io/v1/namespaces/a/leases/l', {}, 'coordination.k8s.io|leases:update'],
    ['DELETE', '/apis/swarm.cfn.dev/v1alpha1/namespaces/a/swarms/s', {}, 'swarm.cfn.dev|swarms:delete'],
    ['DELETE', '/api/v1/namespaces/a/pods', {}, '|pods:deletecollection'],
  ])('%s %s %j -> %s', (method, path, query, want) => {
    expect(one(method, path, query)).toBe(want);
  });

  it('rejects what is not a resource path', () => {
    expect(() => requestToRules('GET', '/version', {})).toThrow('not a resource path: /version');
  });
});
