import { describe, expect, it } from '@jest/globals';
import { POD_NAME_PREFIX_MAX } from '../../../operator/api/common.js';
import { coordinatorPod, coordinatorPodName, coordinatorServiceAccount } from '../../../operator/swarm/coordinator-pod.js';
import { shardStatus } from '../../../operator/api/swarm.js';
import { coordinatorAdmissionPolicy, coordinatorRbac, SHARED_COORDINATOR, sharedCoordinatorRbac } from '../../../operator/swarm/coordinator-rbac.js';
import { SHARD_COORDINATOR_FIELDS } from '../../../operator/swarm/shard-status.js';
import type { Swarm } from '../../../operator/api/swarm.js';

const swarmNamed = (name: string) =>
  ({
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name, namespace: 'team', uid: 'u-1' },
    spec: {
      objective: 'x',
      agents: 1,
      topology: 'auto',
      coordination: { version: 'v2', fallbackEnabled: true, fallbackTimeoutSeconds: 5 },
      agent: { command: ['true'], timeoutSeconds: 300, retries: 0, concurrency: 1, maxOutputBytes: 100 },
      v2: { shmSizeLimit: '64Mi' },
      results: { type: 'emptyDir' },
      timeoutSeconds: 60,
    },
  }) as unknown as Swarm;

describe('coordinator identity', () => {
  it('per-swarm: ServiceAccount, Role and RoleBinding owned by the Swarm, the one verb limited to its own status', () => {
    const { serviceAccount, role, roleBinding } = coordinatorRbac(swarmNamed('alpha'));
    for (const o of [serviceAccount, role, roleBinding]) {
      expect(o.metadata).toMatchObject({
        name: 'alpha-coordinator',
        namespace: 'team',
        ownerReferences: [{ kind: 'Swarm', name: 'alpha', uid: 'u-1', controller: true }],
      });
    }
    expect(role.rules).toEqual([{ apiGroups: ['swarm.cfn.dev'], resources: ['swarms/status'], resourceNames: ['alpha'], verbs: ['patch'] }]);
    expect(roleBinding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'alpha-coordinator', namespace: 'team' }]);
  });

  it('shared: one identity per namespace, owned by no Swarm, its scope left to the admission policy', () => {
    const { serviceAccount, role, roleBinding } = sharedCoordinatorRbac('team');
    for (const o of [serviceAccount, role, roleBinding]) {
      expect(o.metadata.name).toBe(SHARED_COORDINATOR);
      expect(o.metadata).not.toHaveProperty('ownerReferences');
    }
    expect(role.rules).toEqual([{ apiGroups: ['swarm.cfn.dev'], resources: ['swarms/status'], verbs: ['patch'] }]);
    expect(roleBinding.subjects).toEqual([{ kind: 'ServiceAccount', name: SHARED_COORDINATOR, namespace: 'team' }]);
  });

  it('no Swarm name gives a per-swarm ServiceAccount the shared name (a Swarm called "swarm" or "coordinator.swarm.cfn.dev" included)', () => {
    for (const name of ['swarm', 'coordinator', 'coordinator.swarm.cfn.dev', 'coordinator.swarm.cfn', 'a'.repeat(253)]) {
      expect(coordinatorServiceAccount(swarmNamed(name))).not.toBe(SHARED_COORDINATOR);
    }
  });

  it("the pod runs as the identity it is given, else as its Swarm's own", () => {
    const sw = swarmNamed('alpha');
    expect(coordinatorPod(sw, 'v2', { image: 'i', attempt: 1 }).spec.serviceAccountName).toBe('alpha-coordinator');
    expect(coordinatorPod(sw, 'v1', { image: 'i', attempt: 2, serviceAccountName: SHARED_COORDINATOR }).spec.serviceAccountName).toBe(SHARED_COORDINATOR);
  });

  it('the policy matches the shared ServiceAccount of every namespace, all swarm.cfn.dev resources and subresources, and derives pod names as the operator does', () => {
    const { policy, binding } = coordinatorAdmissionPolicy();
    expect(policy.spec.matchConstraints.resourceRules).toEqual([{ apiGroups: ['swarm.cfn.dev'], apiVersions: ['*'], operations: ['*'], resources: ['*/*'] }]);
    expect(policy.spec.matchConditions[0]!.expression).toContain(`endsWith(':${SHARED_COORDINATOR}')`);
    expect(policy.spec.variables.find((v) => v.name === 'prefix')!.expression).toContain(`substring(0, ${POD_NAME_PREFIX_MAX})`);
    // The pod-name pattern the validation accepts is what coordinatorPodName makes.
    const long = swarmNamed('b'.repeat(253));
    expect(coordinatorPodName(long, 'v2', 3)).toBe(`${'b'.repeat(POD_NAME_PREFIX_MAX)}-v2-3`);
    expect(policy.spec.validations[0]!.expression).toContain("matches('^v[12]-[0-9]+$')");
    expect(binding.spec).toEqual({ policyName: policy.metadata.name, validationActions: ['Deny'] });
    expect(policy.spec.failurePolicy).toBe('Fail');
  });

  it("shards: a pod <prefix>-<version>-<n>-s<i> is shard i, and every field of a status.shards entry is either the operator's or its coordinator's", () => {
    const { policy } = coordinatorAdmissionPolicy();
    const shard = policy.spec.variables.find((v) => v.name === 'shard')!.expression;
    expect(shard).toContain("matches('^v[12]-[0-9]+-s[0-9]{1,2}$')");
    // The operator's fields of an entry: a shard's coordinator may not change them (test/integration/operator/shard-identity.test.ts).
    const operatorFields = ['index', 'indexes', 'pod', 'node', 'version', 'phase', 'attempts', 'attemptTime', 'reason', 'message', 'fallback'];
    expect([...operatorFields, ...SHARD_COORDINATOR_FIELDS].sort()).toEqual(Object.keys(shardStatus.shape).sort());
    expect(policy.spec.validations).toHaveLength(4);
    for (const v of policy.spec.validations.slice(1)) expect(v.expression.startsWith('variables.shard < 0 || ')).toBe(true);
  });
});
