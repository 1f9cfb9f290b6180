// `cfn operator --manage-crds` on a real API server: CRDs of an earlier
// release (which prune the fields it did not know) are brought to this
// release, objects stored under them stay readable, a newer release's CRDs
// are never replaced by older ones.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ANNOTATION_RELEASE, generateCrds } from '../../../operator/api/crds.js';
import { swarm as swarmSchema } from '../../../operator/api/swarm.js';
import { ensureCrds } from '../../../operator/release/ensure-crds.js';
import { releaseVersion } from '../../../operator/util/release-version.js';
import { client, createNamespace, deleteNamespace, installCrds, silentLogger, swarmManifest, swarmPath, waitFor } from '../operator/harness.js';
import type { KubeObject } from '../../../operator/k8s/client.js';

const c = client();
const SWARMS_CRD = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/swarms.swarm.cfn.dev';
let ns: string;

type Crd = KubeObject & {
  metadata: { annotations?: Record<string, string>; resourceVersion?: string };
  spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } } }> };
};

/** This release's Swarm CRD as an earlier release had it: without spec.ttlSecondsAfterFinished and without the release annotation. */
function earlierSwarmCrd(annotation?: string): Crd {
  const crd = structuredClone(generateCrds().find((x) => (x.metadata as { name: string }).name === 'swarms.swarm.cfn.dev')) as unknown as Crd;
  delete crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec.properties.ttlSecondsAfterFinished;
  crd.metadata.annotations = annotation ? { [ANNOTATION_RELEASE]: annotation } : {};
  return crd;
}

/** Replaces the Swarm CRD's schema and release annotation (a merge patch replaces lists whole). */
async function installEarlier(annotation?: string): Promise<void> {
  const crd = earlierSwarmCrd(annotation);
  await c.mergePatch(SWARMS_CRD, { metadata: { annotations: { [ANNOTATION_RELEASE]: annotation ?? null } }, spec: { versions: crd.spec.versions } });
}

/** What the API server keeps of spec.ttlSecondsAfterFinished in a Swarm created now (a dry run: nothing is stored). */
async function keepsTtl(): Promise<boolean> {
  const created = await c.request<KubeObject & { spec: Record<string, unknown> }>({
    method: 'POST',
    path: swarmPath(ns),
    query: { dryRun: 'All' },
    body: swarmManifest(ns, `dry-${Math.random().toString(36).slice(2, 7)}`, { ttlSecondsAfterFinished: 30 }),
  });
  return created.spec.ttlSecondsAfterFinished === 30;
}

beforeAll(async () => {
  // This release's CRDs first: the test patches them down to an earlier release's.
  await installCrds(c);
  ns = await createNamespace(c, 'crd-upgrade');
});

afterAll(async () => {
  // Whatever happened, the other tests get this release's CRDs back.
  await installCrds(c);
  await deleteNamespace(c, ns);
});

describe('--manage-crds', () => {
  it('upgrades an earlier release CRD: fields it pruned are kept, objects stored before stay readable', async () => {
    await installEarlier();
    await waitFor('the earlier schema served (the new field pruned)', async () => !(await keepsTtl()) || undefined);
    await c.create(swarmPath(ns), swarmManifest(ns, 'before', { ttlSecondsAfterFinished: 30 }));

    const outcomes = await ensureCrds({ client: c, logger: silentLogger, release: releaseVersion() });
    expect(outcomes).toEqual([
      { name: 'swarms.swarm.cfn.dev', action: 'applied' },
      { name: 'rolloutpolicies.swarm.cfn.dev', action: 'applied', from: releaseVersion() },
    ]);
    const crd = await c.get<Crd>(SWARMS_CRD);
    expect(crd.metadata.annotations?.[ANNOTATION_RELEASE]).toBe(releaseVersion());
    expect(crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec.properties.ttlSecondsAfterFinished).toBeDefined();
    await waitFor('the new schema served', async () => (await keepsTtl()) || undefined);

    // Stored under the earlier schema: pruned then, readable now.
    const before = await c.get(swarmPath(ns, 'before'));
    const parsed = swarmSchema.safeParse(before);
    expect(parsed.success).toBe(true);
    expect(parsed.data?.spec.ttlSecondsAfterFinished).toBeUndefined();
    await c.create(swarmPath(ns), swarmManifest(ns, 'after', { ttlSecondsAfterFinished: 30 }));
    expect(swarmSchema.parse(await c.get(swarmPath(ns, 'after'))).spec.ttlSecondsAfterFinished).toBe(30);
  });

  it('applies over an older annotated release', async () => {
    await installEarlier('0.1.0');
    const outcomes = await ensureCrds({ client: c, logger: silentLogger, release: releaseVersion() });
    expect(outcomes[0]).toEqual({ name: 'swarms.swarm.cfn.dev', action: 'applied', from: '0.1.0' });
    await waitFor('the new schema served', async () => (await keepsTtl()) || undefined);
  });

  it('never replaces a newer release CRD (an operator rolled back keeps its fields)', async () => {
    await installCrds(c);
    await ensureCrds({ client: c, logger: silentLogger, release: releaseVersion() });
    const rv = (await c.get<Crd>(SWARMS_CRD)).metadata.resourceVersion;
    const outcomes = await ensureCrds({ client: c, logger: silentLogger, release: '0.0.1' });
    expect(outcomes.map((o) => o.action)).toEqual(['kept', 'kept']);
    expect(outcomes[0]).toEqual({ name: 'swarms.swarm.cfn.dev', action: 'kept', from: releaseVersion() });
    expect((await c.get<Crd>(SWARMS_CRD)).metadata.resourceVersion).toBe(rv);
    expect(await keepsTtl()).toBe(true);
  });
});
