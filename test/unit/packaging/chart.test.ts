// The Helm chart: lint, golden renderings (UPDATE_GOLDEN=1 rewrites them), the
// restricted pod security of the default install, and schema rejections.
import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crdRules, operatorRules } from '../../../operator/rbac/operator-rbac.js';
import { releaseVersion } from '../../../operator/util/release-version.js';
import { CHART, helmBin, helmTemplate, parseObjects, run } from './tools.js';
import type { K8sObject } from './tools.js';

const GOLDEN = join(import.meta.dirname, 'golden');
const update = process.env.UPDATE_GOLDEN === '1';

const VARIANTS: Record<string, string[]> = {
  default: [],
  'watch-namespaces': ['--set', 'watchNamespaces={team-a,team-b}'],
  'service-monitor': ['--set', 'serviceMonitor.enabled=true', '--set', 'serviceMonitor.labels.release=prom'],
  monitoring: ['--set', 'prometheusRule.enabled=true', '--set', 'prometheusRule.labels.release=prom', '--set', 'grafanaDashboard.enabled=true'],
  'custom-image': [
    '--set',
    'image.repository=registry.example.com/swarm-operator',
    '--set',
    'image.tag=1.2.3',
    '--set',
    'image.pullPolicy=Always',
    '--set',
    'coordinator.image=registry.example.com/coord:1.2.3',
    '--set',
    'coordinationVersion=v1',
  ],
};

const byKind = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind);
type Container = {
  args: string[];
  env: Array<{ name: string; value?: string }>;
  image: string;
  imagePullPolicy: string;
  securityContext: Record<string, unknown>;
};
const deployment = (objs: K8sObject[]) =>
  byKind(objs, 'Deployment')[0] as unknown as { spec: { template: { spec: { securityContext: Record<string, unknown>; containers: Container[] } } } };

describe('helm lint', () => {
  it.each(Object.keys(VARIANTS))('is clean for %s values', (variant) => {
    const out = run(helmBin(), ['lint', CHART, ...VARIANTS[variant]!]);
    expect(out).toContain('0 chart(s) failed');
    expect(out).not.toMatch(/\[(WARNING|ERROR)\]/);
  });
});

describe('helm template golden files', () => {
  it.each(Object.keys(VARIANTS))('%s', (variant) => {
    const rendered = helmTemplate(VARIANTS[variant]!);
    const file = join(GOLDEN, `${variant}.yaml`);
    if (update || !existsSync(file)) {
      if (!update) throw new Error(`${file} is missing: run with UPDATE_GOLDEN=1`);
      mkdirSync(GOLDEN, { recursive: true });
      writeFileSync(file, rendered);
    }
    expect(rendered).toBe(readFileSync(file, 'utf8'));
  });
});

describe('the default install', () => {
  const objs = parseObjects(helmTemplate());

  it('is a ServiceAccount, cluster RBAC, a leader-election Role, a metrics Service, the Deployment and the coordinator admission policy; no ServiceMonitor', () => {
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'ValidatingAdmissionPolicy/swarm-operator-coordinator.swarm.cfn.dev',
        'ValidatingAdmissionPolicyBinding/swarm-operator-coordinator.swarm.cfn.dev',
        'ClusterRole/swarm-operator',
        'ClusterRole/swarm-operator-crds',
        'ClusterRoleBinding/swarm-operator',
        'ClusterRoleBinding/swarm-operator-crds',
        'Deployment/swarm-operator',
        'Role/swarm-operator-leader-election',
        'RoleBinding/swarm-operator-leader-election',
        'Service/swarm-operator-metrics',
        'ServiceAccount/swarm-operator',
      ].sort(),
    );
    expect((byKind(objs, 'ClusterRole')[0] as unknown as { rules: unknown }).rules).toEqual(operatorRules());
  });

  it('runs restricted: non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp', () => {
    const pod = deployment(objs).spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.containers[0]!.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('runs `cfn operator` with leader election, the downward-API namespace and its own image for coordinators', () => {
    const c = deployment(objs).spec.template.spec.containers[0]!;
    expect(c.args[0]).toBe('operator');
    expect(c.args).toContain('--leader-elect');
    expect(c.env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
    expect(c.env).toContainEqual({ name: 'COORDINATOR_IMAGE', value: c.image });
    expect(c.image).toBe(`swarm-operator:${releaseVersion()}`);
    expect(c.args).toContain('--manage-crds');
  });
});

describe('variants', () => {
  it('watchNamespaces: a Role and RoleBinding per namespace; cluster-wide only get/patch on its own CRDs', () => {
    const objs = parseObjects(helmTemplate(VARIANTS['watch-namespaces']));
    expect(byKind(objs, 'ClusterRole').map((r) => [r.metadata.name, r.rules])).toEqual([['swarm-operator-crds', crdRules()]]);
    expect(byKind(objs, 'ClusterRoleBinding').map((r) => r.metadata.name)).toEqual(['swarm-operator-crds']);
    const roles = byKind(objs, 'Role').filter((r) => r.metadata.name === 'swarm-operator');
    expect(roles.map((r) => r.metadata.namespace)).toEqual(['team-a', 'team-b']);
    expect(
      byKind(objs, 'RoleBinding')
        .filter((r) => r.metadata.name === 'swarm-operator')
        .map((r) => r.metadata.namespace),
    ).toEqual(['team-a', 'team-b']);
    expect(deployment(objs).spec.template.spec.containers[0]!.args).toContain('--namespaces=team-a,team-b');
  });

  it('crds.manage=false: no --manage-crds and nothing cluster-wide with watchNamespaces', () => {
    const objs = parseObjects(helmTemplate([...VARIANTS['watch-namespaces']!, '--set', 'crds.manage=false']));
    expect(byKind(objs, 'ClusterRole')).toHaveLength(0);
    expect(byKind(objs, 'ClusterRoleBinding')).toHaveLength(0);
    expect(deployment(objs).spec.template.spec.containers[0]!.args).not.toContain('--manage-crds');
  });

  it('custom image: the coordinator image and pinned version reach the operator', () => {
    const c = deployment(parseObjects(helmTemplate(VARIANTS['custom-image']))).spec.template.spec.containers[0]!;
    expect(c.image).toBe('registry.example.com/swarm-operator:1.2.3');
    expect(c.imagePullPolicy).toBe('Always');
    expect(c.env).toContainEqual({ name: 'COORDINATOR_IMAGE', value: 'registry.example.com/coord:1.2.3' });
    expect(c.env).toContainEqual({ name: 'COORDINATION_VERSION', value: 'v1' });
  });

  it('ServiceMonitor on: scrapes the metrics port', () => {
    const [sm] = byKind(parseObjects(helmTemplate(VARIANTS['service-monitor'])), 'ServiceMonitor');
    expect(sm).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      metadata: { labels: { release: 'prom' } },
      spec: { endpoints: [{ port: 'metrics', path: '/metrics' }] },
    });
  });

  it.each([
    [['--set', 'workers=0'], "at '/workers'"],
    [['--set', 'watchNamespaces={Bad_NS}'], "at '/watchNamespaces/0'"],
    [['--set', 'defaultVersion=v3'], "at '/defaultVersion'"],
    [['--set', 'imageTag=oops'], 'additional properties'],
    [['--set', 'serviceMonitor.enabled=true', '--set', 'metrics.service.enabled=false'], 'serviceMonitor.enabled needs metrics.service.enabled'],
  ])('rejects %j naming the field', (args, message) => {
    expect(() => helmTemplate(args)).toThrow(message);
  });
});
