// CustomResourceDefinitions generated from the zod schemas (crds/ is their
// output; test/unit/api/crds.test.ts fails when the two drift apart).
import { stringify } from 'yaml';
import { API_GROUP, API_VERSION } from './common.js';
import { releaseVersion } from '../util/release-version.js';
import { toStructuralSchema } from './openapi.js';
import { rolloutPolicySpec, rolloutPolicyStatus } from './rollout-policy.js';
import { swarmSpec, swarmStatus } from './swarm.js';
import type { JsonSchema } from './openapi.js';
import type { z } from 'zod';

/** The release whose schemas a CRD holds: the operator never replaces a newer release's CRDs with older ones. */
export const ANNOTATION_RELEASE = `${API_GROUP}/release`;

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

interface ResourceDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  printerColumns: PrinterColumn[];
  /** CEL rules on the whole object (only metadata.name/generateName are visible there). */
  rootRules?: Array<{ rule: string; message: string }>;
}

const RESOURCES: ResourceDefinition[] = [
  {
    kind: 'Swarm',
    plural: 'swarms',
    singular: 'swarm',
    shortNames: ['sw'],
    description: 'A swarm of agent processes working on one objective, run by a V2 (bash, tmpfs) or V1 (TypeScript) coordinator pod.',
    spec: swarmSpec,
    status: swarmStatus,
    rootRules: [{ rule: 'size(self.metadata.name) <= 63', message: 'metadata.name: at most 63 characters (it labels the coordinator pod)' }],
    printerColumns: [
      {
        name: 'Version',
        type: 'string',
        jsonPath: '.status.activeVersion',
        description: 'Version of the coordinator running now (status.version is the one decided)',
      },
      { name: 'Topology', type: 'string', jsonPath: '.status.topology' },
      { name: 'Shards', type: 'integer', jsonPath: '.status.shardCount', description: 'Shards (coordinator pods) the swarm runs as' },
      { name: 'Agents', type: 'integer', jsonPath: '.spec.agents' },
      { name: 'Delivered', type: 'integer', jsonPath: '.status.agents.completed' },
      { name: 'Rate', type: 'number', jsonPath: '.status.deliveryRate' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  {
    kind: 'RolloutPolicy',
    plural: 'rolloutpolicies',
    singular: 'rolloutpolicy',
    shortNames: ['rp'],
    description: 'What share of new Swarms runs on the V2 coordinator, with promotion gates and automatic rollback.',
    spec: rolloutPolicySpec,
    status: rolloutPolicyStatus,
    printerColumns: [
      { name: 'Percentage', type: 'integer', jsonPath: '.spec.v2Percentage' },
      { name: 'Effective', type: 'integer', jsonPath: '.status.effectivePercentage' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'FallbackRate', type: 'number', jsonPath: '.status.observed.fallbackRate' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
];

function crdFor(r: ResourceDefinition): JsonSchema {
  const openAPIV3Schema: JsonSchema = {
    description: r.description,
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: toStructuralSchema(r.spec),
      // observedGeneration 0 until the operator first writes status: a new
      // object reads "not observed yet" (kstatus: InProgress), never Current.
      status: { ...toStructuralSchema(r.status), default: { observedGeneration: 0 } },
    },
    ...(r.rootRules ? { 'x-kubernetes-validations': r.rootRules } : {}),
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${r.plural}.${API_GROUP}`, annotations: { [ANNOTATION_RELEASE]: releaseVersion() } },
    spec: {
      group: API_GROUP,
      names: { kind: r.kind, listKind: `${r.kind}List`, plural: r.plural, singular: r.singular, shortNames: r.shortNames, categories: ['cfn'] },
      scope: 'Namespaced',
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: r.printerColumns,
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

/** Every CRD as a YAML document keyed by its file name under crds/. */
export function generateCrdFiles(): Map<string, string> {
  const header = '# Generated from operator/api by `npm run gen:crds`. Do not edit.\n';
  return new Map(RESOURCES.map((r) => [`${API_GROUP}_${r.plural}.yaml`, header + stringify(crdFor(r), { lineWidth: 0 })]));
}

export function generateCrds(): JsonSchema[] {
  return RESOURCES.map(crdFor);
}
