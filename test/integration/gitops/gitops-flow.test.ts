// The GitOps loop of config/gitops on the real API server with the operator
// running: the rollout directory applied the way Flux applies it (server-side
// apply of `kubectl kustomize` output), waited on the way Flux waits (kstatus
// until Current) and read the way Argo CD reads it (config/argocd's Lua),
// then a commit that changes v2Percentage, and an abort that a re-sync of the
// same commit does not undo.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runCli } from '../../../operator/cli/main.js';
import { resourcePath } from '../../../operator/k8s/client.js';
import { runHealthScript } from '../../unit/gitops/lua-object.js';
import { kubectlBin, parseObjects, run } from '../../unit/packaging/tools.js';
import { client, createNamespace, deleteNamespace, installCrds, REPO, runOperator, waitFor } from '../operator/harness.js';
import { kstatus } from './kstatus.js';
import type { KubeObject } from '../../../operator/k8s/client.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';

const c = client();
let ns: string;
let op: RunningOperator;
const LUA = join(REPO, 'config/argocd/health/swarm.cfn.dev/RolloutPolicy/health.lua');

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'gitops');
  op = await runOperator({ namespaces: [ns] });
});

afterAll(async () => {
  await op?.stop();
  await deleteNamespace(c, ns);
});

type Policy = KubeObject & { metadata: { name: string; generation: number }; status?: { effectivePercentage?: number; phase?: string } };

/** The commit: config/gitops/rollout rendered, with v2Percentage as the commit sets it. */
function rendered(v2Percentage?: number): Policy {
  const [policy, ...rest] = parseObjects(run(kubectlBin(), ['kustomize', join(REPO, 'config/gitops/rollout')])) as unknown as Policy[];
  expect(rest).toEqual([]);
  const spec = policy!.spec as Record<string, unknown>;
  return { ...policy!, metadata: { ...policy!.metadata, namespace: ns }, spec: v2Percentage === undefined ? spec : { ...spec, v2Percentage } };
}

/** Flux's apply: server-side, its own field manager. */
const fluxApply = (p: Policy) =>
  c.apply<Policy>(resourcePath({ group: 'swarm.cfn.dev', version: 'v1alpha1', plural: 'rolloutpolicies', namespace: ns, name: p.metadata.name }), p, {
    fieldManager: 'kustomize-controller',
    force: true,
  });

/** Flux's `wait: true`: kstatus until Current (or Failed). */
const fluxWait = (name: string) =>
  waitFor(`${name} Current or Failed`, async () => {
    const p = await c.get<Policy>(resourcePath({ group: 'swarm.cfn.dev', version: 'v1alpha1', plural: 'rolloutpolicies', namespace: ns, name }));
    const v = kstatus([p])[0]!;
    return v.status === 'Current' || v.status === 'Failed' ? { policy: p, verdict: v } : undefined;
  });

it('apply, wait on health, commit a new v2Percentage, wait again; an abort survives a re-sync until the next commit', async () => {
  const first = await fluxApply(rendered());
  expect(kstatus([first])[0]?.status).toBe('InProgress');
  expect(runHealthScript(LUA, first).status).toBe('Progressing');
  let { policy, verdict } = await fluxWait('v2-rollout');
  expect(verdict.status).toBe('Current');
  expect(policy.status).toMatchObject({ effectivePercentage: 10, phase: 'Canary' });
  expect(runHealthScript(LUA, policy)).toEqual({ status: 'Healthy', message: 'Canary: holding 10%' });

  // A commit: 10% -> 50%.
  const committed = await fluxApply(rendered(50));
  expect(committed.metadata.generation).toBe(policy.metadata.generation + 1);
  expect(kstatus([committed])[0]?.status).toBe('InProgress');
  expect(runHealthScript(LUA, committed).status).toBe('Progressing');
  ({ policy, verdict } = await fluxWait('v2-rollout'));
  expect(verdict.status).toBe('Current');
  expect(runHealthScript(LUA, policy)).toEqual({ status: 'Healthy', message: 'Balanced: holding 50%' });

  // An abort by a person on call; Flux re-applies the same commit: still aborted.
  const out = new Writable({ write: (_c, _e, cb) => cb() });
  expect(
    await runCli(['swarm', 'rollout', 'abort', 'v2-rollout', '-n', ns], { stdout: out, stderr: out, isTTY: false, env: process.env, signals: false }),
  ).toBe(0);
  const resynced = await fluxApply(rendered(50));
  expect(resynced.metadata.generation).toBe(policy.metadata.generation);
  ({ policy, verdict } = await fluxWait('v2-rollout'));
  expect(verdict).toMatchObject({ status: 'Failed' });
  expect(policy.status).toMatchObject({ effectivePercentage: 0, phase: 'RolledBack' });
  expect(runHealthScript(LUA, policy).status).toBe('Degraded');

  // The next commit starts afresh.
  await fluxApply(rendered(60));
  ({ policy, verdict } = await fluxWait('v2-rollout'));
  expect(verdict.status).toBe('Current');
  expect(policy.status).toMatchObject({ effectivePercentage: 60, phase: 'Balanced' });
});
