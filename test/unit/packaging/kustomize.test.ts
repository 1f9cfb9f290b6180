// `kubectl kustomize config/default` installs what the chart's defaults do:
// same objects (kinds, names, namespaces) and the same important fields.
import { describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { generateCrdFiles } from '../../../operator/api/crds.js';
import { helmTemplate, kubectlBin, parseObjects, REPO, run } from './tools.js';
import type { K8sObject } from './tools.js';

const kustomized = parseObjects(run(kubectlBin(), ['kustomize', join(REPO, 'config/default')]));
const charted = parseObjects(helmTemplate(['--include-crds']));
// kustomize's namespace transformer does not know the admission policy kinds
// are cluster-scoped and sets one; the API server ignores it (checked by the
// kustomize-apply integration test, which applies config/default).
const CLUSTER_SCOPED = new Set(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
const id = (o: K8sObject) => `${o.kind}/${CLUSTER_SCOPED.has(o.kind) ? '' : (o.metadata.namespace ?? '')}/${o.metadata.name}`;
const find = (objs: K8sObject[], kind: string, name: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind}/${name} missing`);
  return o as K8sObject & Record<string, unknown>;
};

/** The fields that make the install what it is (labels and Helm's bookkeeping aside). */
function important(o: K8sObject & Record<string, unknown>): unknown {
  switch (o.kind) {
    case 'ClusterRole':
    case 'Role':
      return o.rules;
    case 'ClusterRoleBinding':
    case 'RoleBinding':
      return { roleRef: o.roleRef, subjects: o.subjects };
    case 'Service': {
      const spec = o.spec as { type: string; ports: unknown; selector: unknown };
      return { type: spec.type, ports: spec.ports, selector: spec.selector };
    }
    case 'Deployment': {
      const spec = o.spec as { replicas: number; selector: unknown; template: { spec: Record<string, unknown> } };
      return { replicas: spec.replicas, selector: spec.selector, pod: spec.template.spec };
    }
    case 'CustomResourceDefinition':
      return o.spec;
    default:
      return {};
  }
}

describe('config/default vs the chart defaults', () => {
  it('renders the same objects (plus the namespace, which helm leaves to --create-namespace)', () => {
    expect(kustomized.map(id).sort()).toEqual([...charted.map(id), 'Namespace//swarm-operator-system'].sort());
  });

  it.each(charted.map((o) => [id(o), o] as const))('%s has the same important fields', (_id, chartObj) => {
    const k = find(kustomized, chartObj.kind, chartObj.metadata.name);
    expect(important(k)).toEqual(important(chartObj as K8sObject & Record<string, unknown>));
  });

  it('ships the generated CRDs', () => {
    const crds = kustomized
      .filter((o) => o.kind === 'CustomResourceDefinition')
      .map((o) => o.metadata.name)
      .sort();
    expect(crds).toEqual(['rolloutpolicies.swarm.cfn.dev', 'swarms.swarm.cfn.dev']);
    expect(generateCrdFiles().size).toBe(2);
  });

  it('the namespace enforces the restricted Pod Security Standard', () => {
    expect(find(kustomized, 'Namespace', 'swarm-operator-system').metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted' });
  });
});

describe('config/prometheus', () => {
  const kustomizedMonitoring = parseObjects(run(kubectlBin(), ['kustomize', join(REPO, 'config/prometheus')]));

  it('matches the chart ServiceMonitor', () => {
    const k = kustomizedMonitoring.find((o) => o.kind === 'ServiceMonitor');
    const [h] = parseObjects(helmTemplate(['--set', 'serviceMonitor.enabled=true'])).filter((o) => o.kind === 'ServiceMonitor');
    const spec = (o: K8sObject | undefined) => (o as { spec: { endpoints: unknown; selector: unknown } } | undefined)?.spec;
    expect(spec(k)?.endpoints).toEqual(spec(h)?.endpoints);
    expect(spec(k)?.selector).toEqual(spec(h)?.selector);
  });

  it('ships the chart PrometheusRule (the same rules)', () => {
    const k = kustomizedMonitoring.find((o) => o.kind === 'PrometheusRule');
    const [h] = parseObjects(helmTemplate(['--set', 'prometheusRule.enabled=true'])).filter((o) => o.kind === 'PrometheusRule');
    expect(h).toBeDefined();
    expect((k as { spec?: unknown } | undefined)?.spec).toEqual((h as { spec?: unknown }).spec);
  });
});
