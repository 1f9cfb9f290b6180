import { describe, expect, it } from '@jest/globals';
import { swarmSpec } from '../../../operator/api/swarm.js';
import { coordinatorPod } from '../../../operator/swarm/coordinator-pod.js';
import { ANNOTATION_CLAIM_FOR, claimProblem, claimVerdict, resultsClaim, resultsClaimName } from '../../../operator/swarm/results-claim.js';
import type { Swarm } from '../../../operator/api/swarm.js';

const swarmOf = (results: Record<string, unknown> | undefined, name = 'sw', shards = 1): Swarm => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name, namespace: 'ns', uid: 'u1' },
  spec: swarmSpec.parse({ objective: 'obj', agents: 2, shards, agent: { command: ['cat'] }, ...(results ? { results } : {}) }),
});

describe('results claims of a sharded swarm', () => {
  it("one claim per shard, <swarm>-results-<i>, mounted by that shard's pods; a named claim is every shard's", () => {
    const sharded = swarmOf(undefined, 'sw', 2);
    expect([0, 1].map((i) => resultsClaim(sharded, i)?.metadata.name)).toEqual(['sw-results-0', 'sw-results-1']);
    expect([0, 1].map((i) => resultsClaimName(sharded, i))).toEqual(['sw-results-0', 'sw-results-1']);
    const pod = coordinatorPod(sharded, 'v2', { image: 'img', attempt: 1, shard: 1 });
    expect(pod.metadata.name).toBe('sw-v2-1-s1');
    expect(pod.spec.volumes.find((v) => (v as { name: string }).name === 'results')).toEqual({
      name: 'results',
      persistentVolumeClaim: { claimName: 'sw-results-1' },
    });
    const named = swarmOf({ claimName: 'mine' }, 'sw', 2);
    expect([0, 1].map((i) => resultsClaimName(named, i))).toEqual(['mine', 'mine']);
    expect(resultsClaim(named, 1)).toBeUndefined();
    // A single shard keeps the claim without a suffix.
    expect(resultsClaimName(swarmOf(undefined), 0)).toBe('sw-results');
  });
});

const volumesOf = (sw: Swarm, version: 'v1' | 'v2', attempt: number) => {
  const pod = coordinatorPod(sw, version, { image: 'img', attempt });
  return {
    volume: pod.spec.volumes.find((v) => (v as { name: string }).name === 'results'),
    mount: pod.spec.containers[0]?.volumeMounts.find((m) => (m as { name: string }).name === 'results'),
  };
};

describe('resultsClaim: the claim the operator creates', () => {
  it('by default: <swarm>-results, ReadWriteOnce, 1Gi, the default StorageClass, owned by the Swarm (controller, blocks its deletion)', () => {
    const claim = resultsClaim(swarmOf(undefined));
    expect(claim).toEqual({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: {
        name: 'sw-results',
        namespace: 'ns',
        labels: { 'swarm.cfn.dev/swarm': 'sw', 'app.kubernetes.io/managed-by': 'swarm-operator', 'app.kubernetes.io/name': 'swarm-results' },
        annotations: { [ANNOTATION_CLAIM_FOR]: 'u1' },
        ownerReferences: [{ apiVersion: 'swarm.cfn.dev/v1alpha1', kind: 'Swarm', name: 'sw', uid: 'u1', controller: true, blockOwnerDeletion: true }],
      },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    });
  });

  it('size and storageClassName as given; retain: no owner (kept when the Swarm goes)', () => {
    const claim = resultsClaim(swarmOf({ size: '5Gi', storageClassName: 'fast', retain: true }));
    expect(claim?.spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } }, storageClassName: 'fast' });
    expect(claim?.metadata).not.toHaveProperty('ownerReferences');
    expect(resultsClaim(swarmOf({ size: 1073741824 }))?.spec.resources.requests.storage).toBe('1073741824');
  });

  it('none for an existing claimName, emptyDir or s3', () => {
    expect(resultsClaim(swarmOf({ claimName: 'mine' }))).toBeUndefined();
    expect(resultsClaim(swarmOf({ type: 'emptyDir' }))).toBeUndefined();
    expect(resultsClaim(swarmOf({ type: 's3', s3: { endpoint: 'http://s3:9000', bucket: 'bkt', credentialsSecretRef: { name: 'c' } } }))).toBeUndefined();
  });

  it('a long Swarm name keeps the name within 253 characters, like the other derived names', () => {
    const name = 'a'.repeat(253);
    expect(resultsClaimName(swarmOf(undefined, name))).toBe(`${'a'.repeat(230)}-results`);
  });
});

describe('coordinator pods mount the results volume at /results', () => {
  it('the created claim in every pod: V2 and V1, any attempt', () => {
    const sw = swarmOf(undefined);
    for (const [version, attempt] of [
      ['v2', 1],
      ['v1', 2],
      ['v1', 5],
    ] as const) {
      expect(volumesOf(sw, version, attempt)).toEqual({
        volume: { name: 'results', persistentVolumeClaim: { claimName: 'sw-results' } },
        mount: { name: 'results', mountPath: '/results' },
      });
    }
  });

  it('an existing claimName as it is; emptyDir stays an emptyDir', () => {
    expect(volumesOf(swarmOf({ claimName: 'mine' }), 'v1', 3).volume).toEqual({ name: 'results', persistentVolumeClaim: { claimName: 'mine' } });
    expect(volumesOf(swarmOf({ type: 'emptyDir' }), 'v2', 1).volume).toEqual({ name: 'results', emptyDir: {} });
  });
});

describe('claimVerdict: a claim found under the created name', () => {
  const sw = swarmOf(undefined);
  const owner = (uid: string) => ({ apiVersion: 'swarm.cfn.dev/v1alpha1', kind: 'Swarm', name: 'sw', uid, controller: true });
  it("none: create; this Swarm's: use; kept by an earlier Swarm or made by someone else: use as it is", () => {
    expect(claimVerdict(sw, undefined)).toEqual({ kind: 'create' });
    expect(claimVerdict(sw, { metadata: { name: 'sw-results', ownerReferences: [owner('u1')] } })).toEqual({ kind: 'use', kept: false });
    expect(claimVerdict(sw, { metadata: { name: 'sw-results', annotations: { [ANNOTATION_CLAIM_FOR]: 'u1' } } })).toEqual({ kind: 'use', kept: false });
    expect(claimVerdict(sw, { metadata: { name: 'sw-results', annotations: { [ANNOTATION_CLAIM_FOR]: 'u0' } } })).toEqual({ kind: 'use', kept: true });
    expect(claimVerdict(sw, { metadata: { name: 'sw-results' } })).toEqual({ kind: 'use', kept: true });
  });

  it('being deleted, or owned by an earlier Swarm of the name: wait, saying why', () => {
    expect(claimVerdict(sw, { metadata: { name: 'sw-results', deletionTimestamp: '2026-12-04T12:00:00Z', ownerReferences: [owner('u1')] } })).toEqual({
      kind: 'wait',
      message: 'results claim sw-results is being deleted; a new one is created once it is gone',
    });
    const v = claimVerdict(sw, { metadata: { name: 'sw-results', ownerReferences: [owner('u0')] } });
    expect(v).toEqual({
      kind: 'wait',
      message: 'results claim sw-results belongs to Swarm sw (uid u0), an earlier object of that name; waiting for the garbage collector to delete it',
    });
  });
});

describe('claimProblem: why a claim holds an unschedulable pod', () => {
  const events = (...items: Array<{ type: string; reason: string; message: string; lastTimestamp: string }>) => ({ items });
  it("bound: nothing; missing: says so; pending: the latest event in the claim's words, a Warning first", () => {
    expect(claimProblem('c', { status: { phase: 'Bound' } }, events())).toBeUndefined();
    expect(claimProblem('c', undefined, events())).toBe('results claim c does not exist');
    expect(claimProblem('c', { status: { phase: 'Pending' } }, events())).toBe('results claim c is Pending');
    const e = events(
      { type: 'Warning', reason: 'ProvisioningFailed', message: 'storageclass.storage.k8s.io "fast" not found', lastTimestamp: '2026-12-04T12:00:02Z' },
      {
        type: 'Normal',
        reason: 'WaitForFirstConsumer',
        message: 'waiting for first consumer to be created before binding',
        lastTimestamp: '2026-12-04T12:00:02Z',
      },
      { type: 'Warning', reason: 'FailedBinding', message: 'older', lastTimestamp: '2026-12-04T12:00:01Z' },
    );
    expect(claimProblem('c', { status: { phase: 'Pending' } }, e)).toBe(
      'results claim c is Pending: ProvisioningFailed: storageclass.storage.k8s.io "fast" not found',
    );
    const normal = events({
      type: 'Normal',
      reason: 'FailedBinding',
      message: 'no persistent volumes available for this claim and no storage class is set',
      lastTimestamp: '2026-12-04T12:00:01Z',
    });
    expect(claimProblem('c', { status: { phase: 'Pending' } }, normal)).toBe(
      'results claim c is Pending: FailedBinding: no persistent volumes available for this claim and no storage class is set',
    );
  });
});
