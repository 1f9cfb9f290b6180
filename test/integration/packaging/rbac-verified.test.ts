// RBAC verified, not assumed: the chart is installed for real, the operator
// runs in-process with a token of the chart's ServiceAccount, drives Swarms
// through create, fallback, resume, finalizer, TTL, rollout and leader
// election, and every request it makes is recorded. The chart's rules must be
// exactly what it used plus what granting the coordinator's Role requires
// (and swarms/finalizers update, which admission checks: owner-references.test.ts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { KubeClient } from '../../../operator/k8s/client.js';
import { startOperator } from '../../../operator/manager/operator-manager.js';
import {
  ADMISSION_RULES,
  delegatedRules,
  operatorRules,
  requestToRules,
  ruleSet,
  USED_RULES,
  LEADER_ELECTION_RULES,
} from '../../../operator/rbac/operator-rbac.js';
import { StatusPublisher } from '../../../operator/coordinator/status-publisher.js';
import {
  client,
  createNamespace,
  deleteNamespace,
  getSwarm,
  installCrds,
  listPods,
  podRunning,
  podTerminated,
  policyPath,
  setPodStatus,
  swarmManifest,
  swarmPath,
  waitFor,
} from '../operator/harness.js';
import { helm, helmInstall, tokenKubeconfig } from './chart-install.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';
import type { PolicyRule } from '../../../operator/rbac/operator-rbac.js';
import type { PodObject } from '../operator/harness.js';
import { agentResponse } from '../../helpers/agent-response.js';

const c = client();
const work = mkdtempSync(join(tmpdir(), 'pkg-rbac-'));
const suffix = Math.random().toString(36).slice(2, 7);
const release = `rbac-${suffix}`;
const fullname = `${release}-swarm-operator`;
let releaseNs: string;
let ns: string;
let op: RunningOperator | undefined;
const requests: Array<{ method: string; path: string; query: Record<string, unknown> }> = [];
const logLines: string[] = [];

/** Keeps the operator's log lines, to assert no request was forbidden. */
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  }),
);

const podOf = async (name: string, attempt = 1): Promise<PodObject | undefined> =>
  (await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === name && p.metadata.labels['swarm.cfn.dev/attempt'] === String(attempt));
const gone = async (path: string) => {
  try {
    await c.get(path);
    return undefined;
  } catch {
    return true;
  }
};
const eventsWithCount = async () =>
  (await c.get<{ items: Array<{ reason: string; message: string; count?: number; involvedObject: { name: string } }> }>(`/api/v1/namespaces/${ns}/events`))
    .items;
const key = (k: string) => k.replace('|', ' ');
const asList = (m: Map<string, Set<string>>) => [...m].map(([k, v]) => `${key(k)}: ${[...v].sort().join(',')}`).sort();

beforeAll(async () => {
  await installCrds(c);
  releaseNs = await createNamespace(c, 'pkg-rel');
  ns = await createNamespace(c, 'pkg-watch');
  // No pod of the Deployment is wanted: the operator runs in this process.
  helmInstall(release, releaseNs, ['replicaCount=0']);
  const saClient = KubeClient.load(await tokenKubeconfig(c, releaseNs, fullname, work));
  saClient.onRequest = (method, path, query) => requests.push({ method, path, query: { ...query } });
  op = await startOperator({
    logger,
    client: saClient,
    namespaces: [ns],
    image: 'swarm-operator:0.1.0',
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    workers: 4,
    // Per-swarm: it uses every verb the rules hold (the chart's default, shared, uses the same creates once per namespace).
    coordinatorIdentity: 'per-swarm',
    leaderElection: { enabled: true, namespace: releaseNs, name: fullname, leaseDurationSeconds: 6, renewDeadlineSeconds: 4, retryPeriodSeconds: 0.2 },
  });
  await waitFor('leadership', () => op!.isLeader() || undefined);
});

afterAll(async () => {
  await op?.stop();
  try {
    helm(['uninstall', release, '--namespace', releaseNs]);
  } finally {
    await deleteNamespace(c, ns);
    await deleteNamespace(c, releaseNs);
    rmSync(work, { recursive: true, force: true });
  }
});

describe('the operator under the chart ServiceAccount', () => {
  it('runs a swarm to completion and deletes it after its TTL', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'happy', { agents: 2, coordination: { version: 'v2' }, ttlSecondsAfterFinished: 1 }));
    const pod = await waitFor('v2 pod', () => podOf('happy'));
    expect(pod.spec.serviceAccountName).toBe('happy-coordinator');
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    await waitFor('Running', async () => (await getSwarm(c, ns, 'happy')).status?.phase === 'Running');
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'happy', total: 2, intervalMs: 10 });
    for (const index of [0, 1]) pub.onResponse(agentResponse(index));
    await pub.flush({ status: 'completed' });
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    await waitFor('deleted after its TTL', () => gone(swarmPath(ns, 'happy')), 30_000, 200);
  });

  it('falls back to V1 on a V2 preflight failure', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'fb', { coordination: { version: 'v2' } }));
    const pod = await waitFor('v2 pod', () => podOf('fb'));
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 3, '/dev/shm/cfn not writable'));
    const v1 = await waitFor('v1 pod', () => podOf('fb', 2));
    expect(v1.metadata.labels['swarm.cfn.dev/version']).toBe('v1');
    const sw = await waitFor('fallback status', async () => ((await getSwarm(c, ns, 'fb')).status?.fallback ? getSwarm(c, ns, 'fb') : undefined));
    expect(sw.status).toMatchObject({ activeVersion: 'v1', fallback: { from: 'v2', to: 'v1', reason: '/dev/shm/cfn not writable' } });
  });

  it('replaces lost coordinators (a repeated event is counted) and cleans up on deletion', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'lost', { coordination: { version: 'v1' } }));
    // The same loss twice: the second CoordinatorLost event patches the first's count.
    for (const attempt of [1, 2]) {
      const pod = await waitFor(`v1 pod ${attempt}`, () => podOf('lost', attempt));
      await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 137, undefined, 'OOMKilled'));
    }
    const third = await waitFor('replacement 3', () => podOf('lost', 3));
    const lostEvent = await waitFor('event counted twice', async () =>
      (await eventsWithCount()).find((e) => e.involvedObject.name === 'lost' && e.reason === 'CoordinatorLost' && e.count === 2),
    );
    expect(lostEvent.message).toContain('OOMKilled');
    await c.delete(`/api/v1/namespaces/${ns}/pods/${third.metadata.name}`, { gracePeriodSeconds: 0 });
    await waitFor('replacement 4', () => podOf('lost', 4));
    await c.delete(swarmPath(ns, 'lost'));
    await waitFor('swarm gone (finalizer removed)', () => gone(swarmPath(ns, 'lost')));
  });

  it('re-reads a coordinator pod missing from its cache instead of declaring it lost', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'hidden', { coordination: { version: 'v1' } }));
    const pod = await waitFor('v1 pod', () => podOf('hidden'));
    await waitFor('status written', async () => (await getSwarm(c, ns, 'hidden')).status?.coordinatorAttempts === 1 || undefined);
    // Unlabelled, the pod leaves the operator's label-selected cache but still exists.
    await c.mergePatch(`/api/v1/namespaces/${ns}/pods/${pod.metadata.name}`, { metadata: { labels: { 'app.kubernetes.io/managed-by': null } } });
    await waitFor('GET of the pod', () => requests.some((r) => r.method === 'GET' && r.path.endsWith(`/pods/${pod.metadata.name}`)) || undefined);
    // The reconcile that read the pod has finished (and created nothing) before the pods are listed.
    await op!.controller.idle();
    expect(await podOf('hidden', 2)).toBeUndefined();
  });

  it("explains an unschedulable coordinator by its results claim (read with the claim's events)", async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'nobind', { agents: 1, coordination: { version: 'v1' } }));
    const pod = await waitFor('v1 pod', () => podOf('nobind'));
    await setPodStatus(c, ns, pod.metadata.name, {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'pod has unbound immediate PersistentVolumeClaims' }],
    });
    await waitFor('CoordinatorReady names the claim', async () =>
      (await getSwarm(c, ns, 'nobind')).status?.conditions?.find(
        (x) => x.type === 'CoordinatorReady' && x.message.includes('results claim nobind-results is Pending'),
      ),
    );
  });

  it('writes a RolloutPolicy status', async () => {
    await c.create(policyPath(ns), {
      apiVersion: 'swarm.cfn.dev/v1alpha1',
      kind: 'RolloutPolicy',
      metadata: { name: 'p', namespace: ns },
      spec: { v2Percentage: 10 },
    });
    await waitFor('policy status', async () => (await c.get<{ status?: { phase?: string } }>(policyPath(ns, 'p'))).status?.phase);
  });

  it('never got a 403', () => {
    expect(logLines.filter((l) => /forbidden|\b403\b/i.test(l))).toEqual([]);
  });
});

describe('the chart RBAC', () => {
  it('grants exactly the verbs the operator used, plus what the coordinator Role delegates and admission checks', async () => {
    await op!.stop(); // releases the lease: an update
    op = undefined;
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${releaseNs}/leases/`;
    const used: PolicyRule[] = requests.flatMap((r) => requestToRules(r.method, r.path, r.query));
    const inWatched = used.filter((r) => !r.resources.includes('leases'));
    const leases = requests
      .filter((r) => r.path.startsWith(leasePath) || r.path === leasePath.slice(0, -1))
      .flatMap((r) => requestToRules(r.method, r.path, r.query));
    expect(asList(ruleSet(inWatched))).toEqual(asList(ruleSet(USED_RULES)));
    expect(asList(ruleSet(leases))).toEqual(asList(ruleSet(LEADER_ELECTION_RULES)));
    // Every request of the run went to the watched namespace or the lease.
    expect(
      requests.filter(
        (r) => !r.path.includes(`/namespaces/${ns}/`) && !r.path.endsWith(`/namespaces/${ns}`) && !r.path.includes(`/namespaces/${releaseNs}/leases`),
      ),
    ).toEqual([]);

    // What is installed is the generated rules: used + delegated, nothing else.
    const role = await c.get<{ rules: PolicyRule[] }>(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${fullname}`);
    expect(asList(ruleSet(role.rules))).toEqual(asList(ruleSet(operatorRules())));
    expect(asList(ruleSet(role.rules))).toEqual(asList(ruleSet([...USED_RULES, ...delegatedRules(), ...ADMISSION_RULES])));
    const le = await c.get<{ rules: PolicyRule[] }>(`/apis/rbac.authorization.k8s.io/v1/namespaces/${releaseNs}/roles/${fullname}-leader-election`);
    expect(asList(ruleSet(le.rules))).toEqual(asList(ruleSet(LEADER_ELECTION_RULES)));
  });
});

describe('why the rules hold what they hold', () => {
  let probe: KubeClient;
  const rbac = '/apis/rbac.authorization.k8s.io/v1';
  const grant = async (rules: PolicyRule[]) => {
    await c.apply(
      `${rbac}/namespaces/${ns}/roles/probe`,
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'probe', namespace: ns }, rules },
      { fieldManager: 'test', force: true },
    );
  };
  beforeAll(async () => {
    await c.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'probe' } });
    await c.create(`${rbac}/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'probe' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'probe' },
      subjects: [{ kind: 'ServiceAccount', name: 'probe', namespace: ns }],
    });
    probe = KubeClient.load(await tokenKubeconfig(c, ns, 'probe', work));
  });

  it('server-side apply of a missing object needs create as well as patch', async () => {
    await grant([{ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['patch'] }]);
    // Once patch is in effect (it patches an existing object), apply still cannot create.
    await c.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'existing' } });
    await waitFor('patch granted', () => probe.mergePatch(`/api/v1/namespaces/${ns}/serviceaccounts/existing`, { metadata: { labels: { probed: 'yes' } } }));
    const sa = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'applied', namespace: ns } };
    await expect(probe.apply(`/api/v1/namespaces/${ns}/serviceaccounts/applied`, sa, { fieldManager: 'probe' })).rejects.toThrow(/forbidden|403/i);
    await grant([{ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['create', 'patch'] }]);
    await waitFor('apply allowed', () => probe.apply(`/api/v1/namespaces/${ns}/serviceaccounts/applied`, sa, { fieldManager: 'probe' }));
  });

  it('granting the coordinator Role needs the delegated rules (RBAC escalation check)', async () => {
    const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'delegated', namespace: ns }, rules: delegatedRules() };
    await grant([{ apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['create', 'patch'] }]);
    // Polled: the Role change reaches the authorizer's cache within moments.
    const refusal = await waitFor('the escalation refusal', async () => {
      try {
        await probe.apply(`${rbac}/namespaces/${ns}/roles/delegated`, role, { fieldManager: 'probe' });
        return 'allowed';
      } catch (e) {
        return /not currently held/.test(String(e)) ? String(e) : undefined;
      }
    });
    expect(refusal).toContain('attempting to grant RBAC permissions not currently held');
    expect(refusal).toContain('Resources:["swarms/status"], Verbs:["patch"]');
    await grant([{ apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['create', 'patch'] }, ...delegatedRules()]);
    await waitFor('escalation allowed', () => probe.apply(`${rbac}/namespaces/${ns}/roles/delegated`, role, { fieldManager: 'probe' }));
  });
});
