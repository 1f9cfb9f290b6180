// Fields removed from the Swarm schema, on a real API server. A Swarm stored
// while the schema still had spec.v2.coordinators and
// spec.v2.workersPerCoordinator (0.2.0) keeps working once the current CRD is
// applied: the API server prunes the fields it no longer knows when it reads
// the object, so the operator parses it and it takes updates. A new request
// setting them is refused by kubectl (strict field validation, its default)
// and stripped by the API server for a client that asks for no validation.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { swarm } from '../../../operator/api/swarm.js';
import { KubeApiError } from '../../../operator/k8s/errors.js';
import { resourcePath } from '../../../operator/k8s/client.js';
import { kubectlBin } from '../../unit/packaging/tools.js';
import { client, createNamespace, deleteNamespace, getSwarm, installCrds, REPO, swarmManifest, swarmPath, waitFor } from '../operator/harness.js';
import type { SwarmObject } from '../operator/harness.js';

const c = client();
const specOf = (o: SwarmObject) => o.spec as { objective?: string; v2?: Record<string, unknown> };
let ns: string;

const REMOVED = { coordinators: 2, workersPerCoordinator: 50 };
const CRD_NAME = 'swarms.swarm.cfn.dev';
const crdPath = resourcePath({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', name: CRD_NAME });

interface Crd {
  spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: { spec: { properties: { v2: { properties: Record<string, unknown> } } } } } } }> };
}

/** The current Swarm CRD with spec.v2 as 0.2.0 had it. */
function crdWithRemovedFields(): Crd {
  const crd = parse(readFileSync(join(REPO, 'crds/swarm.cfn.dev_swarms.yaml'), 'utf8')) as Crd;
  for (const v of crd.spec.versions) {
    Object.assign(v.schema.openAPIV3Schema.properties.spec.properties.v2.properties, {
      coordinators: { type: 'integer', minimum: 1, maximum: 100 },
      workersPerCoordinator: { type: 'integer', minimum: 1, maximum: 1000 },
    });
  }
  return crd;
}

/** A server-side dry run of creating a Swarm that sets the removed fields, with strict field validation: undefined when accepted. */
async function strictDryRun(): Promise<KubeApiError | undefined> {
  try {
    await c.request({
      method: 'POST',
      path: swarmPath(ns),
      body: swarmManifest(ns, 'probe', { v2: REMOVED }),
      query: { dryRun: 'All', fieldValidation: 'Strict' },
    });
    return undefined;
  } catch (e) {
    if (e instanceof KubeApiError) return e;
    throw e;
  }
}

/** kubectl with the test cluster's kubeconfig. */
function kubectl(args: string[], input?: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(kubectlBin(), ['--kubeconfig', process.env.KUBECONFIG ?? '', ...args], (err, _stdout, stderr) =>
      resolve({ code: err ? 1 : 0, stderr }),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'removed-fields');
});

afterAll(async () => {
  await installCrds(c);
  await deleteNamespace(c, ns);
});

describe('spec.v2.coordinators and spec.v2.workersPerCoordinator, removed in 0.3.0', () => {
  it('a Swarm stored with them reads back without them under the current CRD, parses and takes updates', async () => {
    await c.apply(crdPath, crdWithRemovedFields(), { fieldManager: 'integration-tests', force: true });
    // The API server serves a changed schema once it has rebuilt its handler.
    await waitFor('the 0.2.0 schema in force', async () => (await strictDryRun()) === undefined || undefined, 30_000, 100);
    await c.create(swarmPath(ns), swarmManifest(ns, 'stored', { v2: { shmSizeLimit: '64Mi', ...REMOVED } }));
    expect((await getSwarm(c, ns, 'stored')).spec).toMatchObject({ v2: { shmSizeLimit: '64Mi', ...REMOVED } });

    await installCrds(c);
    const refused = await waitFor('the current schema in force', strictDryRun, 30_000, 100);
    expect([refused.status, refused.message]).toEqual([400, expect.stringContaining('unknown field "spec.v2.coordinators"')]);

    const stored = await getSwarm(c, ns, 'stored');
    expect(specOf(stored).v2).toEqual({ shmSizeLimit: '64Mi' });
    expect(swarm.safeParse(stored).success).toBe(true);

    await c.mergePatch(swarmPath(ns, 'stored'), { spec: { v2: { shmSizeLimit: '128Mi' } } });
    const updated = await getSwarm(c, ns, 'stored');
    expect([updated.metadata.generation, specOf(updated).v2]).toEqual([2, { shmSizeLimit: '128Mi' }]);
  });

  it('a new Swarm setting them is refused by kubectl, naming the field', async () => {
    const r = await kubectl(['create', '-f', '-'], JSON.stringify(swarmManifest(ns, 'new-style', { v2: REMOVED })));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown field "spec.v2.coordinators"');
    expect(r.stderr).toContain('unknown field "spec.v2.workersPerCoordinator"');
  });

  it('a client that skips field validation gets the Swarm without them', async () => {
    await c.request({ method: 'POST', path: swarmPath(ns), body: swarmManifest(ns, 'lenient', { v2: REMOVED }), query: { fieldValidation: 'Ignore' } });
    expect(specOf(await getSwarm(c, ns, 'lenient')).v2).toEqual({ shmSizeLimit: '256Mi' });
  });
});
