// `cfn operator --manage-crds`: the operator brings its CustomResourceDefinitions
// to its own release by server-side apply before it watches anything. Helm
// installs a chart's crds/ once and never upgrades them; this is the path by
// which `helm upgrade` (or a GitOps image bump) upgrades the schemas too.
import { z } from 'zod';
import { ANNOTATION_RELEASE, generateCrds } from '../api/crds.js';
import { KubeApiError, isNotFound, PermanentError } from '../k8s/errors.js';
import { compareVersions } from '../util/release-version.js';
import type { KubeClient } from '../k8s/client.js';
import type { Logger } from 'pino';

export const CRD_FIELD_MANAGER = 'swarm-operator-crds';
const CRDS_PATH = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

const crdShape = z.looseObject({
  metadata: z.looseObject({ name: z.string(), annotations: z.record(z.string(), z.string()).optional() }),
  status: z.looseObject({ conditions: z.array(z.looseObject({ type: z.string(), status: z.string(), message: z.string().optional() })).optional() }).optional(),
});

export interface CrdOutcome {
  name: string;
  /** applied: now at this release; kept: the cluster holds a newer release's CRD, left alone. */
  action: 'applied' | 'kept';
  /** The release the cluster's CRD held before (absent for CRDs of releases before annotations). */
  from?: string;
}

export interface EnsureCrdsOptions {
  client: KubeClient;
  logger: Logger;
  release: string;
  /** How long to wait for each applied CRD to be Established (default 30 s). */
  timeoutMs?: number;
}

/**
 * Applies every CRD of this release unless the cluster's copy comes from a
 * newer one (an operator rolled back must not prune the newer fields that
 * stored objects hold). A CRD that is not installed at all is an error: the
 * chart's crds/ or `kubectl apply -k config/crd` installs them, and the
 * operator holds no right to create CRDs.
 */
export async function ensureCrds(opts: EnsureCrdsOptions): Promise<CrdOutcome[]> {
  const outcomes: CrdOutcome[] = [];
  for (const crd of generateCrds()) {
    const name = (crd.metadata as { name: string }).name;
    const path = `${CRDS_PATH}/${name}`;
    const current = await opts.client.get(path).then(
      (o) => crdShape.parse(o),
      (e: unknown) => {
        if (isNotFound(e))
          throw new PermanentError(
            `CustomResourceDefinition ${name} is not installed: install the chart's CRDs (charts/swarm-operator/crds) or \`kubectl apply -k config/crd\` first`,
          );
        if (e instanceof KubeApiError && e.status === 403)
          throw new PermanentError(
            `--manage-crds: no right to read CustomResourceDefinition ${name} (the chart grants it with crds.manage=true): ${e.message}`,
          );
        throw e;
      },
    );
    const from = current.metadata.annotations?.[ANNOTATION_RELEASE];
    if (from !== undefined && (compareVersions(from, opts.release) ?? 0) > 0) {
      opts.logger.warn({ crd: name, cluster: from, release: opts.release }, `CRD ${name} is from release ${from}, newer than ${opts.release}: kept`);
      outcomes.push({ name, action: 'kept', from });
      continue;
    }
    await opts.client.apply(path, crd, { fieldManager: CRD_FIELD_MANAGER, force: true });
    outcomes.push({ name, action: 'applied', ...(from !== undefined ? { from } : {}) });
    opts.logger.info({ crd: name, from: from ?? 'unannotated', release: opts.release }, `CRD ${name} at release ${opts.release}`);
  }
  await Promise.all(outcomes.filter((o) => o.action === 'applied').map((o) => established(opts.client, o.name, opts.timeoutMs ?? 30_000)));
  return outcomes;
}

/** Waits until the API server serves the applied schema (condition Established). */
async function established(client: KubeClient, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const crd = crdShape.parse(await client.get(`${CRDS_PATH}/${name}`));
    const conditions = crd.status?.conditions ?? [];
    if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) return;
    if (Date.now() > deadline) {
      const why = conditions.map((c) => `${c.type}=${c.status}${c.message ? ` (${c.message})` : ''}`).join(', ');
      throw new Error(`CustomResourceDefinition ${name} not Established within ${timeoutMs} ms: ${why || 'no conditions'}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
