import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCrdFiles, generateCrds } from '../../../operator/api/crds.js';
import { swarmSpec } from '../../../operator/api/swarm.js';

const CRD_DIR = join(process.cwd(), 'crds');

describe('crds/', () => {
  it('matches what the zod schemas generate (run `npm run gen:crds` after changing operator/api)', () => {
    const generated = generateCrdFiles();
    const onDisk = readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml'));
    expect(onDisk.sort()).toEqual([...generated.keys()].sort());
    for (const [name, text] of generated) expect(readFileSync(join(CRD_DIR, name), 'utf8')).toBe(text);
  });

  // The Helm chart and kustomize ship the same files (gen:crds writes all three).
  it.each(['charts/swarm-operator/crds', 'config/crd/bases'])('has identical copies in %s', (dir) => {
    const generated = generateCrdFiles();
    const copies = readdirSync(join(process.cwd(), dir)).filter((f) => f.endsWith('.yaml'));
    expect(copies.sort()).toEqual([...generated.keys()].sort());
    for (const [name, text] of generated) expect(readFileSync(join(process.cwd(), dir, name), 'utf8')).toBe(text);
  });

  it('emits only structural keywords the API server accepts', () => {
    const text = JSON.stringify(generateCrds());
    expect(text).not.toMatch(/"anyOf"|"oneOf"|"\$schema"|"additionalProperties":false/);
  });

  it('names the kinds as documented: group, plural, short name, category and printer columns', () => {
    const crds = generateCrds() as Array<{
      spec: { group: string; names: Record<string, unknown>; versions: Array<{ name: string; additionalPrinterColumns: Array<{ name: string }> }> };
    }>;
    const byKind = new Map(crds.map((c) => [c.spec.names.kind, c.spec]));
    const swarm = byKind.get('Swarm');
    const policy = byKind.get('RolloutPolicy');
    expect(swarm?.group).toBe('swarm.cfn.dev');
    expect(swarm?.names).toMatchObject({ plural: 'swarms', shortNames: ['sw'], categories: ['cfn'] });
    expect(swarm?.versions.map((v) => v.name)).toEqual(['v1alpha1']);
    expect(swarm?.versions[0]?.additionalPrinterColumns.map((c) => c.name)).toEqual([
      'Version',
      'Topology',
      'Shards',
      'Agents',
      'Delivered',
      'Rate',
      'Phase',
      'Age',
    ]);
    expect(policy?.names).toMatchObject({ plural: 'rolloutpolicies', shortNames: ['rp'], categories: ['cfn'] });
    expect(policy?.versions[0]?.additionalPrinterColumns.map((c) => c.name)).toEqual(['Percentage', 'Effective', 'Phase', 'FallbackRate', 'Age']);
  });

  it('carries defaults and CEL rules for cross-field and immutable fields', () => {
    const [crd] = generateCrds();
    const text = JSON.stringify(crd);
    expect(text).toContain('"x-kubernetes-validations"');
    expect(text).toContain('self.agents == oldSelf.agents');
    expect(text).toContain('"default":"auto"');
  });
});

describe('swarmSpec', () => {
  it('fills defaults like the API server does', () => {
    const spec = swarmSpec.parse({ objective: 'fix lint', agents: 3, agent: { command: ['true'] } });
    expect(spec.topology).toBe('auto');
    expect(spec.coordination).toEqual({ version: 'auto', fallbackEnabled: true, fallbackTimeoutSeconds: 30, startDeadlineSeconds: 600 });
    expect(spec.agent.retries).toBe(2);
    expect(spec.v2.shmSizeLimit).toBe('256Mi');
    expect(spec.results.type).toBe('persistentVolumeClaim');
  });

  it('rejects out-of-range agents naming the field', () => {
    const r = swarmSpec.safeParse({ objective: 'x', agents: 0, agent: { command: ['true'] } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['agents']);
  });
});
