// Deprecated fields on a real API server: the Warn-mode policy of
// config/rbac (the chart ships the same) makes kubectl print a warning naming
// the field and the release that removes it; the object is admitted and the
// field kept; a Swarm without deprecated fields gets no warning.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { DEPRECATED_SWARM_FIELDS, DEPRECATION_POLICY, deprecationMessage } from '../../../operator/api/deprecations.js';
import { kubectlBin } from '../../unit/packaging/tools.js';
import { client, createNamespace, deleteNamespace, getSwarm, installCrds, REPO, swarmManifest, waitFor } from '../operator/harness.js';

const c = client();
let ns: string;

/** kubectl with the test cluster's kubeconfig; resolves with its stderr (warnings go there). */
function kubectl(args: string[], input?: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(kubectlBin(), ['--kubeconfig', process.env.KUBECONFIG ?? '', ...args], (err, _stdout, stderr) => resolve({ code: err ? 1 : 0, stderr }));
    if (input !== undefined) child.stdin?.end(input);
  });
}

const withDeprecated = (name: string) => swarmManifest(ns, name, { v2: { coordinators: 2, workersPerCoordinator: 50 } });

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'deprecations');
  const applied = await kubectl(['apply', '-f', join(REPO, 'config/rbac/deprecation_policy.yaml')]);
  expect(applied).toMatchObject({ code: 0 });
});

afterAll(async () => {
  await kubectl(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', DEPRECATION_POLICY, '--ignore-not-found']);
  await deleteNamespace(c, ns);
});

describe('deprecated Swarm fields', () => {
  it('are admitted with a warning per field naming the release that removes it', async () => {
    // The policy takes effect once the API server has compiled it: dry runs until it warns.
    await waitFor('the deprecation policy in force', async () => {
      const r = await kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(withDeprecated('probe')));
      return r.stderr.includes('Warning:') || undefined;
    }, 30_000, 250);
    const r = await kubectl(['create', '-f', '-'], JSON.stringify(withDeprecated('old-style')));
    expect(r.code).toBe(0);
    const warnings = r.stderr.trim().split('\n');
    expect(warnings).toHaveLength(DEPRECATED_SWARM_FIELDS.length);
    // kubectl: "Warning: Validation failed for ValidatingAdmissionPolicy '<name>' with binding '<name>': <message>".
    DEPRECATED_SWARM_FIELDS.forEach((d, i) => {
      const w = warnings[i] ?? '';
      expect([w.startsWith('Warning: '), w.includes(`'${DEPRECATION_POLICY}'`), w.endsWith(`: ${deprecationMessage(d)}`)]).toEqual([true, true, true]);
    });
    expect((await getSwarm(c, ns, 'old-style')).spec).toMatchObject({ v2: { coordinators: 2, workersPerCoordinator: 50 } });
  });

  it('a Swarm without them gets no warning', async () => {
    const r = await kubectl(['create', '-f', '-'], JSON.stringify(swarmManifest(ns, 'current')));
    expect(r).toEqual({ code: 0, stderr: '' });
  });
});
