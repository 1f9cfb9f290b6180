// `kubectl explain swarm.spec` (and rolloutpolicy.spec) describes every field:
// each property of the specs, and each object inside an array, carries a
// description in the generated CRDs. On the real API server:
// test/integration/gitops/explain.test.ts.
import { expect, it } from '@jest/globals';
import { generateCrds } from '../../../operator/api/crds.js';

type Schema = { description?: string; type?: string; properties?: Record<string, Schema>; items?: Schema };

/** Paths of fields without a description; scalar array items and map values are shown by their field. */
function undescribed(node: Schema, path: string): string[] {
  const own = node.description ? [] : [path];
  const props = Object.entries(node.properties ?? {}).flatMap(([k, v]) => undescribed(v, `${path}.${k}`));
  const items = node.items?.type === 'object' ? undescribed(node.items, `${path}[]`) : [];
  return [...own, ...props, ...items];
}

it.each(generateCrds().map((crd) => [(crd as { spec: { names: { kind: string } } }).spec.names.kind, crd] as const))(
  '%s: every spec field has a description',
  (_kind, crd) => {
    const root = (crd as { spec: { versions: Array<{ schema: { openAPIV3Schema: Schema } }> } }).spec.versions[0]!.schema.openAPIV3Schema;
    expect(undescribed(root.properties!.spec!, 'spec')).toEqual([]);
  },
);
