// The operator's alerts and dashboard, checked with real tools: promtool checks
// the rule file and runs its tests on synthetic series (config/prometheus/tests);
// the chart and config/prometheus ship the one rule file unchanged; every
// metric a rule or a dashboard panel names is one the operator exports.
// UPDATE_GOLDEN=1 rewrites config/prometheus/prometheusrule.yaml from the rule file.
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { createOperatorMetrics } from '../../../operator/observability/metrics.js';
import { CHART, helmTemplate, parseObjects, REPO } from './tools.js';

const RULES = join(CHART, 'files/prometheus-rules.yaml');
const DASHBOARD = join(CHART, 'files/grafana-dashboard.json');
const CONFIG_RULE = join(REPO, 'config/prometheus/prometheusrule.yaml');
const TESTS = join(REPO, 'config/prometheus/tests');
const CONFIG_HEADER = `# The operator's alerts as a Prometheus Operator PrometheusRule (needs its CRD).
# spec is charts/swarm-operator/files/prometheus-rules.yaml, the one copy of the
# rules; UPDATE_GOLDEN=1 on test/unit/packaging/prometheus-rules.test.ts rewrites
# this file from it (the test fails while they differ).
`;

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string> }> }>;
}
interface Dashboard {
  title: string;
  uid: string;
  templating: { list: Array<{ name: string; type: string }> };
  panels: Array<{ id: number; title: string; datasource: { uid: string }; targets: Array<{ expr: string; refId: string }> }>;
}

function promtool(args: string[], cwd = REPO): string {
  try {
    return execFileSync('promtool', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { code?: string; stdout?: string; stderr?: string; message: string };
    if (err.code === 'ENOENT') throw new Error('promtool is not installed: run bash scripts/install-system-deps.sh (Debian package prometheus)');
    throw new Error(`promtool ${args.join(' ')} failed:\n${err.stdout ?? ''}${err.stderr ?? err.message}`);
  }
}

/**
 * The metric names a PromQL expression selects: identifiers left once strings,
 * label matchers, ranges, grouping clauses, Grafana variables, functions and
 * keywords are taken out.
 */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
  const names = [...bare.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()/g)].map((m) => m[1]!).filter((n) => !keywords.has(n.toLowerCase()));
  return [...new Set(names)];
}

async function exportedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await createOperatorMetrics().registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${m.name}${s}`);
  }
  return names;
}

const rules = parse(readFileSync(RULES, 'utf8')) as RuleFile;
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;

describe('the alert rules', () => {
  it('pass promtool check rules', () => {
    expect(promtool(['check', 'rules', RULES])).toMatch(/SUCCESS: \d+ rules found/);
  });

  it.each(readdirSync(TESTS).filter((f) => f.endsWith('.yaml')))('pass promtool test rules %s', (file) => {
    expect(promtool(['test', 'rules', file], TESTS)).toMatch(/SUCCESS/);
  });

  it('cover fallback and delivery gates, operator down, no leader, reconcile errors and the work queue', () => {
    const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(alerts.sort()).toEqual(
      [
        'SwarmOperatorDown',
        'SwarmOperatorNoLeader',
        'SwarmOperatorReconcileErrors',
        'SwarmOperatorReconcileStuck',
        'SwarmOperatorWorkQueueBacklog',
        'SwarmRolloutDeliveryLow',
        'SwarmRolloutFallbackRateHigh',
      ].sort(),
    );
    // Each alert is exercised by a promtool test.
    const tested = readdirSync(TESTS)
      .filter((f) => f.endsWith('.yaml'))
      .flatMap(
        (f) =>
          (parse(readFileSync(join(TESTS, f), 'utf8')) as { tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }> }).tests,
      )
      .flatMap((t) => t.alert_rule_test ?? [])
      .filter((t) => t.exp_alerts.length > 0)
      .map((t) => t.alertname);
    expect(new Set(tested)).toEqual(new Set(alerts));
  });

  it('name only metrics the operator exports', async () => {
    const exported = await exportedNames();
    for (const r of rules.groups.flatMap((g) => g.rules)) {
      const names = metricNames(r.expr);
      expect(names.length).toBeGreaterThan(0);
      for (const n of names) expect({ alert: r.alert, metric: n, exported: exported.has(n) }).toEqual({ alert: r.alert, metric: n, exported: true });
    }
  });

  it('are shipped unchanged by the chart (prometheusRule.enabled) and by config/prometheus', () => {
    const expected =
      CONFIG_HEADER +
      stringify(
        {
          apiVersion: 'monitoring.coreos.com/v1',
          kind: 'PrometheusRule',
          metadata: { name: 'swarm-operator', labels: { 'app.kubernetes.io/name': 'swarm-operator' } },
          spec: rules,
        },
        { lineWidth: 0 },
      );
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(CONFIG_RULE, expected);
    expect(readFileSync(CONFIG_RULE, 'utf8')).toBe(expected);
    const kustomization = parse(readFileSync(join(REPO, 'config/prometheus/kustomization.yaml'), 'utf8')) as { resources: string[] };
    expect(kustomization.resources).toContain('prometheusrule.yaml');

    const charted = parseObjects(helmTemplate(['--set', 'prometheusRule.enabled=true', '--set', 'prometheusRule.labels.release=prom'])).find(
      (o) => o.kind === 'PrometheusRule',
    );
    expect(charted?.metadata).toMatchObject({ name: 'swarm-operator', namespace: 'swarm-operator-system', labels: { release: 'prom' } });
    expect((charted as unknown as { spec: unknown }).spec).toEqual(rules);
    expect(parseObjects(helmTemplate()).some((o) => o.kind === 'PrometheusRule')).toBe(false);
  });
});

describe('the Grafana dashboard', () => {
  it('is a dashboard with a Prometheus datasource variable and panels that each query something', () => {
    expect(dashboard).toMatchObject({ title: 'swarm-operator', uid: 'swarm-operator' });
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource' }));
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.datasource.uid).toBe('${datasource}');
      expect(p.targets.length).toBeGreaterThan(0);
    }
    const titles = dashboard.panels.map((p) => p.title).join(' | ');
    for (const topic of [/by phase/, /[Dd]elivery/, /Fallbacks by reason/, /percentage/, /Reconcile latency/]) expect(titles).toMatch(topic);
  });

  it('queries only metrics the operator exports', async () => {
    const exported = await exportedNames();
    for (const p of dashboard.panels) {
      for (const t of p.targets) {
        const names = metricNames(t.expr);
        expect(names.length).toBeGreaterThan(0);
        for (const n of names) expect({ panel: p.title, metric: n, exported: exported.has(n) }).toEqual({ panel: p.title, metric: n, exported: true });
      }
    }
  });

  it('is shipped by the chart as a ConfigMap with the sidecar label, only when enabled', () => {
    const cm = parseObjects(helmTemplate(['--set', 'grafanaDashboard.enabled=true', '--set', 'grafanaDashboard.namespace=monitoring'])).find(
      (o) => o.kind === 'ConfigMap',
    );
    expect(cm?.metadata).toMatchObject({ name: 'swarm-operator-dashboard', namespace: 'monitoring', labels: { grafana_dashboard: '1' } });
    expect(JSON.parse((cm as unknown as { data: Record<string, string> }).data['swarm-operator.json']!)).toEqual(dashboard);
    expect(parseObjects(helmTemplate()).some((o) => o.kind === 'ConfigMap')).toBe(false);
  });
});

describe('metricNames', () => {
  it('finds the selected metrics and nothing else', () => {
    expect(
      metricNames('histogram_quantile(0.99, sum by (le, controller) (rate(controller_runtime_reconcile_time_seconds_bucket{job="x"}[$__rate_interval])))'),
    ).toEqual(['controller_runtime_reconcile_time_seconds_bucket']);
    expect(metricNames('a > b and on (policy) c >= ignoring(x) d offset 5m')).toEqual(['a', 'b', 'c', 'd']);
    expect(metricNames('absent(up{job="a and b"})')).toEqual(['up']);
  });
});
