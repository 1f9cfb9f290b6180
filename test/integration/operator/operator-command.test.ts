// `cfn operator` itself (operatorCommand in-process, its options from argv and
// env as the CLI parses them) against the real API server: the kubeconfig it
// logs, COORDINATION_VERSION deciding auto Swarms, and what /metrics,
// /healthz and /readyz serve while Swarms queue behind one worker and finish.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { operatorCommand } from '../../../operator/cli/operator-command.js';
import { StatusPublisher } from '../../../operator/coordinator/status-publisher.js';
import {
  client,
  createNamespace,
  deleteNamespace,
  events,
  getSwarm,
  installCrds,
  listPods,
  podRunning,
  podTerminated,
  sample,
  scrape,
  setPodStatus,
  swarmManifest,
  swarmPath,
  waitFor,
} from './harness.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';
import { Capture, captureIo } from '../../helpers/capture.js';
import { agentResponse } from '../../helpers/agent-response.js';

const c = client();
let ns: string;
let op: RunningOperator;
let exitCode: Promise<number>;
let stop: () => void;
const logs = new Capture();
/** The highest workqueue_depth{name="swarm"} /metrics showed while the first Swarms were queued. */
let maxDepth = 0;
let scrapes = 0;

// Queued before the operator starts: its first list hands all of them to one worker.
const FILLERS = ['fill-0', 'fill-1', 'fill-2', 'fill-3'];
const SWARMS = ['auto', 'unset', 'pinned', 'metered', ...FILLERS];

beforeAll(async () => {
  await installCrds(c);
  ns = await createNamespace(c, 'swarm-cmd');
  await c.create(swarmPath(ns), swarmManifest(ns, 'auto', { coordination: { version: 'auto' } }));
  await c.create(swarmPath(ns), swarmManifest(ns, 'unset'));
  await c.create(swarmPath(ns), swarmManifest(ns, 'pinned', { coordination: { version: 'v2' } }));
  await c.create(swarmPath(ns), swarmManifest(ns, 'metered', { agents: 4, coordination: { version: 'v2' }, successPolicy: { minDeliveryRate: 75 } }));
  for (const name of FILLERS) await c.create(swarmPath(ns), swarmManifest(ns, name, { coordination: { version: 'v1' } }));

  // --default-version stays v2: a v1 decision can only come from the env.
  const io = captureIo({ KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME, PATH: process.env.PATH, COORDINATION_VERSION: 'v1' });
  const started = new Promise<RunningOperator>((resolve, reject) => {
    exitCode = operatorCommand(
      ['--namespaces', ns, '--no-leader-elect', '--metrics-port', '0', '--metrics-host', '127.0.0.1', '--workers', '1', '--image', 'swarm-operator:test'],
      io,
      { logger: pino({ level: 'info' }, logs), until: new Promise<void>((r) => (stop = r)), onStarted: resolve },
    );
    exitCode.catch(reject);
  });
  op = await started;
  // Scrape as fast as we can until every Swarm has its pod: one worker, eight keys.
  let done = false;
  const poller = (async () => {
    while (!done) {
      const depth = sample((await scrape(op.port)).text, 'workqueue_depth', { name: 'swarm' }) ?? 0;
      maxDepth = Math.max(maxDepth, depth);
      scrapes++;
    }
  })();
  try {
    await waitFor(
      'a pod per Swarm',
      async () => {
        const names = new Set((await listPods(c, ns)).map((p) => p.metadata.labels['swarm.cfn.dev/swarm']));
        return SWARMS.every((s) => names.has(s)) || undefined;
      },
      30_000,
      100,
    );
  } finally {
    done = true;
    await poller;
  }
});

afterAll(async () => {
  stop?.();
  if (exitCode) expect(await exitCode).toBe(0);
  await deleteNamespace(c, ns);
});

const swarmWith = async (name: string, check: (s: Awaited<ReturnType<typeof getSwarm>>) => boolean) =>
  waitFor(`${name}`, async () => {
    const s = await getSwarm(c, ns, name);
    return check(s) ? s : undefined;
  });

describe('cfn operator', () => {
  it('logs which kubeconfig it runs against ($KUBECONFIG here)', () => {
    const line = logs.text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg: string; kubeconfig?: string; source?: string })
      .find((l) => l.kubeconfig !== undefined);
    expect(line).toMatchObject({ kubeconfig: process.env.KUBECONFIG, source: 'KUBECONFIG', msg: `kubeconfig: ${process.env.KUBECONFIG} (KUBECONFIG)` });
  });

  it("the operator's COORDINATION_VERSION decides Swarms with version auto or unset; spec.coordination.version beats it", async () => {
    for (const name of ['auto', 'unset']) {
      const sw = await swarmWith(name, (s) => Boolean(s.status?.version));
      expect(sw.status).toMatchObject({ version: 'v1', versionReason: 'operator COORDINATION_VERSION=v1', activeVersion: 'v1' });
      expect((await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === name)?.metadata.name).toBe(`${name}-v1-1`);
    }
    const pinned = await swarmWith('pinned', (s) => Boolean(s.status?.version));
    expect(pinned.status).toMatchObject({ version: 'v2', versionReason: 'spec.coordination.version=v2' });
    const ev = await waitFor('VersionSelected event', async () =>
      (await events(c, ns)).find((e) => e.involvedObject.name === 'auto' && e.reason === 'VersionSelected'),
    );
    expect(ev.message).toBe('coordination v1: operator COORDINATION_VERSION=v1');
  });

  it('/metrics: workqueue_depth rose while eight Swarms waited for one worker and drains back to 0; workqueue_adds_total counted them', async () => {
    expect(scrapes).toBeGreaterThan(0);
    expect(maxDepth).toBeGreaterThan(0);
    await op.controller.idle();
    const text = await waitFor('depth 0', async () => {
      const t = (await scrape(op.port)).text;
      return sample(t, 'workqueue_depth', { name: 'swarm' }) === 0 ? t : undefined;
    });
    expect(sample(text, 'workqueue_adds_total', { name: 'swarm' })).toBeGreaterThanOrEqual(SWARMS.length);
    // Exposed (HELP/TYPE) before any error; the errors test in swarm-lifecycle moves them.
    expect(text).toContain('# TYPE workqueue_retries_total counter');
    expect(text).toContain('# TYPE controller_runtime_reconcile_errors_total counter');
  });

  it('/healthz and /readyz answer 200 once the caches synced', async () => {
    expect(await scrape(op.port, '/healthz')).toEqual({ status: 200, text: 'ok' });
    expect(await scrape(op.port, '/readyz')).toEqual({ status: 200, text: 'ok' });
  });

  it('/metrics moves swarm_phase, swarm_delivery_rate, swarm_coordination_seconds and the reconcile metrics when a Swarm completes', async () => {
    const pod = await waitFor('metered pod', async () => (await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === 'metered'));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    await swarmWith('metered', (s) => s.status?.phase === 'Running');
    // swarm_phase reads the operator's cache at scrape time: the watch event may trail the API's answer.
    const scrapeWhen = (what: string, ok: (t: string) => boolean) =>
      waitFor(what, async () => {
        const t = (await scrape(op.port)).text;
        return ok(t) ? t : undefined;
      });
    const before = await scrapeWhen('swarm_phase Running', (t) => sample(t, 'swarm_phase', { phase: 'Running', version: 'v2' }) === 1);
    expect(sample(before, 'swarm_phase', { phase: 'Succeeded', version: 'v2' })).toBeUndefined();
    expect(sample(before, 'swarm_delivery_rate', { namespace: ns, name: 'metered' })).toBeUndefined();
    expect(sample(before, 'swarm_coordination_seconds_count', { version: 'v2' }) ?? 0).toBe(0);
    const reconcilesBefore = sample(before, 'controller_runtime_reconcile_time_seconds_count', { controller: 'swarm' }) ?? 0;
    const addsBefore = sample(before, 'workqueue_adds_total', { name: 'swarm' }) ?? 0;
    expect(reconcilesBefore).toBeGreaterThan(0);

    // The coordinator: 3 of 4 agents delivered, then its pod succeeds.
    const pub = new StatusPublisher({ client: c, namespace: ns, name: 'metered', total: 4, pod: pod.metadata.name, intervalMs: 10 });
    for (const index of [0, 1, 2]) pub.onResponse(agentResponse(index));
    // Past 300 ms by the wall clock the status is stamped with (a timer may fire a millisecond early by Date.now()).
    await new Promise((r) => setTimeout(r, 320));
    await pub.flush({ status: 'completed' });
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const done = await swarmWith('metered', (s) => s.status?.phase === 'Succeeded');
    const coordinationMs = (done.status as { coordinationTimeMs?: number }).coordinationTimeMs ?? 0;
    expect(coordinationMs).toBeGreaterThanOrEqual(300);
    await op.controller.idle();

    const after = await scrapeWhen('swarm_phase Succeeded', (t) => sample(t, 'swarm_phase', { phase: 'Succeeded', version: 'v2' }) === 1);
    expect(sample(after, 'swarm_phase', { phase: 'Running', version: 'v2' })).toBeUndefined();
    expect(sample(after, 'swarm_delivery_rate', { namespace: ns, name: 'metered' })).toBe(75);
    // One observation per finished Swarm, of its coordination time.
    expect(sample(after, 'swarm_coordination_seconds_count', { version: 'v2' })).toBe(1);
    expect(sample(after, 'swarm_coordination_seconds_sum', { version: 'v2' })).toBeCloseTo(coordinationMs / 1000, 3);
    expect(sample(after, 'swarm_coordination_seconds_bucket', { version: 'v2', le: '0.5' })).toBe(coordinationMs <= 500 ? 1 : 0);
    expect(sample(after, 'swarm_coordination_seconds_bucket', { version: 'v2', le: '+Inf' })).toBe(1);
    expect(sample(after, 'controller_runtime_reconcile_time_seconds_count', { controller: 'swarm' })).toBeGreaterThan(reconcilesBefore);
    expect(sample(after, 'controller_runtime_reconcile_time_seconds_sum', { controller: 'swarm' })).toBeGreaterThan(0);
    expect(sample(after, 'workqueue_adds_total', { name: 'swarm' })).toBeGreaterThan(addsBefore);
    expect(sample(after, 'workqueue_depth', { name: 'swarm' })).toBe(0);
  });
});
