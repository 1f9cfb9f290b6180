// An in-place upgrade on a real node: the previous release (built from its
// commit, as the suite builds the current image) installed with its chart,
// swarms finished and running, then `helm upgrade` to the working tree: the
// CRDs move to this release, finished swarms stay as they were, the running
// one completes on its own coordinator pod with every agent run once, and a
// Swarm using this release's fields works. `helm rollback` leaves every
// object readable. The suite's own install is restored afterwards.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { MODE, REPO, apply, freshNamespace, getSwarm, kubectl, kubectlJson, listSwarms, swarmPods, tempDir, waitFor } from './kube.js';
import { dropResultsNamespace, resultsVolume, runCounts } from './results-volume.js';

const RELEASE = 'swarm-operator';
const RELEASE_NS = 'swarm-system';
const AGENTS = 16;

const sh = (cmd: string, args: readonly string[], cwd = REPO): string => {
  try {
    return execFileSync(cmd, [...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, env: process.env });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr || err.stdout || err.message}`);
  }
};
const helmBin = (): string => sh('bash', ['-c', `source "${REPO}/test/cluster/lib.sh" && bin_path helm`]).trim();
const helm = (args: readonly string[]) => sh(helmBin(), [...args, '--kubeconfig', process.env.KUBECONFIG ?? '']);
const version = (dir: string): string => (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;

/** The release below this one in CHANGELOG.md, and the commit it was cut from. */
function previousRelease(): { version: string; commit: string } {
  const sections = readFileSync(path.join(REPO, 'CHANGELOG.md'), 'utf8').split(/^## /m).slice(1);
  const current = version(REPO);
  const i = sections.findIndex((s) => s.startsWith(`${current}\n`));
  const prev = sections[i + 1];
  const m = prev ? /^(\S+)\n[\s\S]*?commit `([0-9a-f]{7,40})`/.exec(prev) : null;
  if (!m) throw new Error(`CHANGELOG.md: no release with a commit below ${current}`);
  return { version: m[1]!, commit: m[2]! };
}

/** The previous release's tree, built, its image imported into the node: returns the tree. */
function buildPrevious(commit: string): string {
  const dir = tempDir('swarm-prev-');
  execFileSync('bash', ['-c', `git -C "$1" archive "$2" | tar -x -C "$3"`, 'archive', REPO, commit, dir], { stdio: 'inherit' });
  // Its dependencies: this tree's when the lock files agree, else its own.
  const lock = (d: string) =>
    JSON.stringify({
      ...(JSON.parse(readFileSync(path.join(d, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> }).packages,
      '': undefined,
    });
  if (lock(dir) === lock(REPO)) symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  else sh('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], dir);
  const images = path.join(dir, '.local/image');
  sh('bash', ['scripts/image/build.sh', '--out-dir', images], dir);
  sh('bash', [path.join(REPO, 'test/cluster/node.sh'), 'images', '--name', 'e2e', '--image-dir', images]);
  return dir;
}

/**
 * The CRDs of the tree in `dir`, in place of the cluster's: their schema and
 * release annotation (a merge patch replaces the versions list whole; deleting
 * a CRD would delete every object of its kind).
 */
async function installCrdsOf(dir: string): Promise<void> {
  const crdDir = path.join(dir, 'charts/swarm-operator/crds');
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith('.yaml'))) {
    const crd = parse(readFileSync(path.join(crdDir, file), 'utf8')) as {
      metadata: { name: string; annotations?: Record<string, string> };
      spec: { versions: unknown[] };
    };
    const patch = {
      metadata: { annotations: { 'swarm.cfn.dev/release': crd.metadata.annotations?.['swarm.cfn.dev/release'] ?? null } },
      spec: { versions: crd.spec.versions },
    };
    await kubectl(['patch', 'crd', crd.metadata.name, '--type', 'merge', '-p', JSON.stringify(patch)]);
  }
}

const crdRelease = async (name: string) =>
  (await kubectlJson(z.object({ metadata: z.object({ annotations: z.record(z.string(), z.string()).optional() }) }), ['get', 'crd', name])).metadata
    .annotations?.['swarm.cfn.dev/release'];

/** The operator Deployment rolled out with this image. */
async function operatorRolledOut(image: string): Promise<void> {
  await waitFor(`operator on ${image}`, async () => {
    const dep = await kubectlJson(
      z.object({ spec: z.object({ template: z.object({ spec: z.object({ containers: z.array(z.object({ image: z.string() })) }) }) }) }),
      ['get', 'deployment', '-n', RELEASE_NS, RELEASE],
    );
    return dep.spec.template.spec.containers[0]?.image === image || undefined;
  });
  await kubectl(['rollout', 'status', '-n', RELEASE_NS, `deployment/${RELEASE}`, '--timeout=180s'], { timeoutMs: 190_000 });
}

const chartArgs = (chart: string, tag: string) => [
  chart,
  '-n',
  RELEASE_NS,
  '--set',
  'image.repository=swarm-operator',
  '--set',
  `image.tag=${tag}`,
  '--set',
  'image.pullPolicy=IfNotPresent',
  '--wait',
  '--timeout',
  '5m',
];

/** Everything `kubectl apply -k DIR/config/default` installs, as objects. */
const kustomizeObjects = async (dir: string) =>
  parseAllDocuments((await kubectl(['kustomize', path.join(dir, 'config/default')])).stdout).map(
    (d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string } },
  );

/** Deletes a kustomize install except its CRDs (deleting those would delete every Swarm). */
async function deleteKustomizeInstall(dir: string): Promise<void> {
  for (const o of await kustomizeObjects(dir)) {
    if (o.kind === 'CustomResourceDefinition') continue;
    await kubectl(['delete', o.kind, o.metadata.name, ...(o.metadata.namespace ? ['-n', o.metadata.namespace] : []), '--ignore-not-found', '--wait=true'], {
      timeoutMs: 180_000,
    });
  }
}

/**
 * Agents that record their run, then hold until the test opens the gate (the
 * file `go` in the results volume, on this machine): the swarm is certainly
 * mid-run while the operator is upgraded.
 */
const GATED_AGENT = ['sh', '-c', 'echo "$AGENT_INDEX" >> /results/runs.log; while [ ! -e /results/go ]; do sleep 0.2; done; echo "done $AGENT_INDEX"'];

/** A swarm of gated agents: started, its first agents holding. */
async function startRecordingSwarm(ns: string, name: string): Promise<string> {
  const dir = await resultsVolume(ns, `${name}-results`);
  await apply(
    ns,
    swarm(name, {
      agents: AGENTS,
      coordination: { version: 'v2', fallbackTimeoutSeconds: 60 },
      agent: { command: GATED_AGENT, timeoutSeconds: 600, retries: 0, concurrency: 2 },
      v2: { shmSizeLimit: '64Mi' },
      results: { type: 'persistentVolumeClaim', claimName: `${name}-results` },
    }),
  );
  await waitFor(
    `${name}: two agents holding`,
    async () => (readFileSync(path.join(dir, 'runs.log'), 'utf8').trim().split('\n').length >= 2 ? true : undefined),
    180_000,
    200,
  );
  return dir;
}

/** Lets the held agents answer. */
const openGate = (dir: string) => writeFileSync(path.join(dir, 'go'), '');

/** The recording swarm finished on its first coordinator pod, every agent run exactly once. */
async function completedOnce(ns: string, name: string, dir: string): Promise<void> {
  await kubectl(['wait', '-n', ns, '--for=condition=Complete', `swarm/${name}`, '--timeout=300s'], { timeoutMs: 310_000 });
  const s = await getSwarm(ns, name);
  expect(s.status).toMatchObject({ phase: 'Succeeded', activeVersion: 'v2', coordinatorAttempts: 1, agents: { total: AGENTS, completed: AGENTS, failed: 0 } });
  expect(s.status?.fallback).toBeUndefined();
  // Taken over, not recreated: its first coordinator pod finished the run.
  expect((await swarmPods(ns, name)).map((p) => p.metadata.name)).toEqual([`${name}-v2-1`]);
  const counts = await runCounts(ns, `${name}-results`, dir);
  for (let i = 0; i < AGENTS; i++) expect([i, counts.get(i)]).toEqual([i, 1]);
}

const swarm = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: { objective: 'e2e upgrade', topology: 'flat', ...spec },
});

jest.setTimeout(1_500_000);

const describeLocal = MODE === 'local' ? describe : describe.skip;

describeLocal('upgrade from the previous release', () => {
  const current = version(REPO);
  let prev: { version: string; commit: string };
  let prevTree = '';
  let ns = '';

  beforeAll(() => {
    prev = previousRelease();
    prevTree = buildPrevious(prev.commit);
  });

  afterAll(async () => {
    // The rest of the suite runs on this tree's install.
    helm(['upgrade', '--install', RELEASE, ...chartArgs(path.join(REPO, 'charts/swarm-operator'), current)]);
    await operatorRolledOut(`swarm-operator:${current}`);
    if (ns) await dropResultsNamespace(ns);
    if (prevTree) rmSync(prevTree, { recursive: true, force: true });
  });

  it('helm upgrade while swarms run: CRDs upgraded, finished swarms unchanged, the running one completes once, new fields work; rollback keeps all readable', async () => {
    // The previous release as a user has it: its CRDs, its chart, its image.
    helm(['uninstall', RELEASE, '-n', RELEASE_NS, '--wait']);
    await installCrdsOf(prevTree);
    helm(['install', RELEASE, ...chartArgs(path.join(prevTree, 'charts/swarm-operator'), prev.version)]);
    await operatorRolledOut(`swarm-operator:${prev.version}`);

    ns = await freshNamespace('upgrade');
    await apply(ns, swarm('finished', { agents: 3, agent: { command: ['true'] }, coordination: { version: 'v2' } }));
    await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/finished', '--timeout=180s'], { timeoutMs: 190_000 });
    const finishedBefore = await kubectlJson(z.looseObject({ status: z.looseObject({}) }), ['get', 'swarm', '-n', ns, 'finished']);

    const dir = await startRecordingSwarm(ns, 'running');

    // The upgrade, as `helm upgrade` to the new chart and image.
    helm(['upgrade', RELEASE, ...chartArgs(path.join(REPO, 'charts/swarm-operator'), current)]);
    await operatorRolledOut(`swarm-operator:${current}`);
    await waitFor(
      'CRDs at this release',
      async () => ((await crdRelease('swarms.swarm.cfn.dev')) === current && (await crdRelease('rolloutpolicies.swarm.cfn.dev')) === current) || undefined,
    );
    const upgradedMidRun = await getSwarm(ns, 'running');
    expect(upgradedMidRun.status?.phase).toBe('Running');
    openGate(dir);

    await completedOnce(ns, 'running', dir);

    // Everything the previous release wrote stays as it was; the new operator adds at most the kstatus conditions (a release before them wrote none), and Ready says it succeeded.
    const finishedAfter = await kubectlJson(z.looseObject({ status: z.looseObject({}) }), ['get', 'swarm', '-n', ns, 'finished']);
    const { conditions: condsBefore = [], ...restBefore } = finishedBefore.status as { conditions?: Array<{ type: string }> };
    const { conditions: condsAfter = [], ...restAfter } = finishedAfter.status as { conditions?: Array<{ type: string }> };
    expect(restAfter).toEqual(restBefore);
    expect(condsAfter.filter((c) => condsBefore.some((b) => b.type === c.type))).toEqual(condsBefore);
    for (const added of condsAfter.filter((c) => !condsBefore.some((b) => b.type === c.type)))
      expect(['Ready', 'Reconciling', 'Stalled']).toContain(added.type);
    expect(condsAfter.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });

    // A field this release added, applied and honoured: two shards, one pod each, one status.
    await apply(ns, swarm('new-field', { agents: 4, agent: { command: ['true'] }, coordination: { version: 'v2' }, topology: 'auto', shards: 2 }));
    await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/new-field', '--timeout=180s'], { timeoutMs: 190_000 });
    const sharded = (await getSwarm(ns, 'new-field')).status as { shards?: Array<{ index: number; indexes: string; phase: string }> } & Record<string, unknown>;
    expect(sharded).toMatchObject({ phase: 'Succeeded', shardCount: 2, deliveryRate: 100, agents: { total: 4, completed: 4, failed: 0 } });
    expect(sharded.shards?.map((e) => [e.index, e.indexes, e.phase])).toEqual([
      [0, '0-1', 'Succeeded'],
      [1, '2-3', 'Succeeded'],
    ]);

    // Back to the previous release: its operator reads every object, the CRDs stay at this release.
    helm(['rollback', RELEASE, '1', '-n', RELEASE_NS, '--wait', '--timeout', '5m']);
    await operatorRolledOut(`swarm-operator:${prev.version}`);
    expect(await crdRelease('swarms.swarm.cfn.dev')).toBe(current);
    const after = await listSwarms(ns);
    expect(after.map((s) => [s.metadata.name, s.status?.phase]).sort()).toEqual([
      ['finished', 'Succeeded'],
      ['new-field', 'Succeeded'],
      ['running', 'Succeeded'],
    ]);
    expect(existsSync(dir)).toBe(true);
  });

  it('kubectl apply -k config/default over the previous release: the same, without helm', async () => {
    helm(['uninstall', RELEASE, '-n', RELEASE_NS, '--wait']);
    try {
      await installCrdsOf(prevTree);
      await kubectl(['apply', '-k', path.join(prevTree, 'config/default')]);
      await kubectl(['rollout', 'status', '-n', 'swarm-operator-system', 'deployment/swarm-operator', '--timeout=180s'], { timeoutMs: 190_000 });
      const dir = await startRecordingSwarm(ns, 'kustomized');

      await kubectl(['apply', '-k', path.join(REPO, 'config/default')]);
      await kubectl(['rollout', 'status', '-n', 'swarm-operator-system', 'deployment/swarm-operator', '--timeout=180s'], { timeoutMs: 190_000 });
      await waitFor('CRDs at this release', async () => (await crdRelease('swarms.swarm.cfn.dev')) === current || undefined);
      expect((await getSwarm(ns, 'kustomized')).status?.phase).toBe('Running');
      openGate(dir);
      await completedOnce(ns, 'kustomized', dir);
    } finally {
      await deleteKustomizeInstall(REPO);
    }
  });
});
