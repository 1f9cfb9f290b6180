// The operator's alerts against a real Prometheus: the Debian `prometheus`
// binary, started here on loopback with its own data dir, scrapes the
// operator's pod (the host reaches pod IPs over the node's bridge) every
// second with the chart's rule file loaded. A real V2 failure (the preflight
// of 500 agents in a 16 MiB /dev/shm) makes SwarmRolloutFallbackRateHigh fire;
// a burst of swarms that cannot be scheduled (cpu "50" per coordinator) must
// leave it quiet: waiting for a node is no V2 failure.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { MODE, REPO, apply, dropNamespace, freshNamespace, kubectl, kubectlJson, listSwarms, sleep, tempDir, waitFor } from './kube.js';
import type { ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';

const RULES = path.join(REPO, 'charts/swarm-operator/files/prometheus-rules.yaml');

jest.setTimeout(900_000);

const policy = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'swarm.cfn.dev/v1alpha1', kind: 'RolloutPolicy', metadata: { name }, spec });
const swarm = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: {
    objective: 'e2e alerts',
    agents: 2,
    topology: 'flat',
    coordination: { version: 'auto', fallbackTimeoutSeconds: 600 },
    agent: { command: ['cat'], timeoutSeconds: 60, retries: 0, concurrency: 2 },
    v2: { shmSizeLimit: '16Mi' },
    ...extra,
  },
});

const alertsSchema = z.object({
  data: z.object({
    alerts: z.array(
      z.object({ labels: z.record(z.string(), z.string()), annotations: z.record(z.string(), z.string()), state: z.string(), value: z.string() }),
    ),
  }),
});
const vectorSchema = z.object({
  data: z.object({ result: z.array(z.object({ metric: z.record(z.string(), z.string()), value: z.tuple([z.number(), z.string()]) })) }),
});

let prom: ChildProcess | undefined;
let promUrl = '';
let dataDir = '';
let promLog = '';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function promGet<T>(schema: z.ZodType<T>, api: string, query: Record<string, string> = {}): Promise<T> {
  const res = await fetch(`${promUrl}${api}?${new URLSearchParams(query)}`);
  if (!res.ok) throw new Error(`${api}: HTTP ${res.status}: ${await res.text()}`);
  return schema.parse(await res.json());
}
const alerts = async () => (await promGet(alertsSchema, '/api/v1/alerts')).data.alerts;
const query = async (q: string) => (await promGet(vectorSchema, '/api/v1/query', { query: q })).data.result;

const maybe = MODE === 'local' ? describe : describe.skip;

maybe('alerts on a real Prometheus scraping the operator', () => {
  beforeAll(async () => {
    const pods = await kubectlJson(
      z.object({ items: z.array(z.object({ status: z.object({ podIP: z.string().optional(), phase: z.string().optional() }) })) }),
      ['get', 'pods', '-A', '-l', 'app.kubernetes.io/name=swarm-operator'],
    );
    const ip = pods.items.find((p) => p.status.phase === 'Running' && p.status.podIP)?.status.podIP;
    if (!ip) throw new Error('no running operator pod with an IP');
    dataDir = tempDir('e2e-prometheus-');
    promLog = path.join(dataDir, 'prometheus.log');
    const config = path.join(dataDir, 'prometheus.yml');
    writeFileSync(
      config,
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [RULES],
        scrape_configs: [{ job_name: 'swarm-operator', static_configs: [{ targets: [`${ip}:8080`], labels: { namespace: 'swarm-operator-system' } }] }],
      }),
    );
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    const { openSync } = await import('node:fs');
    const log = openSync(promLog, 'a');
    prom = spawn(
      'prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${path.join(dataDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
      ],
      { stdio: ['ignore', log, log] },
    );
    await waitFor(
      'Prometheus scraping the operator',
      async () => ((await query('up{job="swarm-operator"} == 1').catch(() => [])).length === 1 ? true : undefined),
      60_000,
      500,
    );
  });

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const closed = new Promise((r) => prom!.on('close', r));
      prom.kill('SIGTERM');
      await Promise.race([closed, sleep(10_000)]);
      if (prom.exitCode === null) prom.kill('SIGKILL');
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('the operator exports every metric the rules need, and nothing fires on a quiet operator', async () => {
    for (const m of [
      'leader_election_master_status',
      'workqueue_depth',
      'workqueue_longest_running_processor_seconds',
      'controller_runtime_reconcile_total',
      'controller_runtime_reconcile_errors_total',
    ]) {
      expect({ metric: m, series: (await query(m)).length > 0 }).toEqual({ metric: m, series: true });
    }
    expect(await query('leader_election_master_status{name="swarm-operator"} == 1')).toHaveLength(1);
    expect(
      (await alerts()).filter(
        (a) => a.state === 'firing' && a.labels.alertname !== 'SwarmRolloutFallbackRateHigh' && a.labels.alertname !== 'SwarmRolloutDeliveryLow',
      ),
    ).toEqual([]);
  });

  it('SwarmRolloutFallbackRateHigh fires when V2 really fails (a real preflight failure in one of 3 swarms)', async () => {
    const ns = await freshNamespace('alert-fire');
    try {
      await apply(ns, policy('risky', { v2Percentage: 100, default: true, rollbackOnBreach: true, gates: { minSamples: 3, maxFallbackRate: 5 } }));
      await apply(ns, swarm('ok-a'));
      await apply(ns, swarm('ok-b'));
      await apply(
        ns,
        swarm('too-big', { agents: 500, topology: 'auto', shards: 1, agent: { command: ['cat'], timeoutSeconds: 60, retries: 0, concurrency: 16 } }),
      );
      const firing = await waitFor(
        'SwarmRolloutFallbackRateHigh firing',
        async () =>
          (await alerts()).find((a) => a.labels.alertname === 'SwarmRolloutFallbackRateHigh' && a.labels.policy === `${ns}/risky` && a.state === 'firing'),
        300_000,
        1000,
      );
      expect(firing.labels.severity).toBe('critical');
      expect(Number(firing.value)).toBeCloseTo(33.33, 1);
      expect(firing.annotations.summary).toBe(`V2 falls back too often under RolloutPolicy ${ns}/risky`);
      // What fired is what the policy says.
      const fellBack = (await listSwarms(ns)).find((s) => s.metadata.name === 'too-big');
      expect(fellBack?.status?.fallback?.reason).toMatch(/not enough space on \/dev\/shm/);
      expect(await query(`rollout_gate_max_fallback_rate{policy="${ns}/risky"}`)).toEqual([expect.objectContaining({ value: [expect.any(Number), '5'] })]);
    } finally {
      await dropNamespace(ns);
    }
  });

  it('SwarmRolloutFallbackRateHigh stays quiet for a burst of swarms waiting to be scheduled (cpu "50" each)', async () => {
    const ns = await freshNamespace('alert-quiet');
    try {
      await apply(ns, policy('patient', { v2Percentage: 100, default: true, rollbackOnBreach: true, gates: { minSamples: 3, maxFallbackRate: 5 } }));
      // The default startup limit (5 s): a pod that waits for a node longer than that is still no V2 failure.
      const big = {
        agent: { command: ['cat'], timeoutSeconds: 60, retries: 0, concurrency: 2, resources: { requests: { cpu: '50' } } },
        coordination: { version: 'auto' },
      };
      await kubectl(['apply', '-n', ns, '-f', '-'], {
        input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: Array.from({ length: 6 }, (_, i) => swarm(`wait-${i}`, big)) }),
      });
      // Unschedulable for real: the scheduler says so on each pod.
      await waitFor(
        '6 coordinator pods unschedulable',
        async () => {
          const pods = await kubectlJson(
            z.object({
              items: z.array(
                z.object({
                  status: z.object({ conditions: z.array(z.object({ type: z.string(), status: z.string(), reason: z.string().optional() })).optional() }),
                }),
              ),
            }),
            ['get', 'pods', '-n', ns],
          );
          const waiting = pods.items.filter((p) =>
            p.status.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable'),
          );
          return waiting.length >= 6 ? true : undefined;
        },
        180_000,
        1000,
      );
      // The window holds enough samples to be judged: quiet because nothing fell back, not because too few swarms.
      await waitFor(
        'the policy observed the 6 V2 swarms',
        async () => ((await query(`rollout_observed_v2_swarms{policy="${ns}/patient"} >= 6`)).length === 1 ? true : undefined),
        60_000,
        1000,
      );
      // Watched for 12 startup limits and more: never pending or firing.
      const seen: string[] = [];
      const until = Date.now() + 60_000;
      while (Date.now() < until) {
        for (const a of await alerts()) if (a.labels.policy === `${ns}/patient`) seen.push(`${a.labels.alertname} ${a.state} ${a.value}`);
        await sleep(2000);
      }
      const swarms = await listSwarms(ns);
      const fallbacks = swarms.filter((s) => s.status?.fallback).map((s) => `${s.metadata.name}: ${s.status?.fallback?.reason}`);
      expect({ alerts: [...new Set(seen)], fallbacks }).toEqual({ alerts: [], fallbacks: [] });
    } finally {
      await dropNamespace(ns);
    }
  });
});
