#!/usr/bin/env node
// `npm run bench:operator`: apply N Swarms (default 1000) to a real API server
// and time until every one has its coordinator pod, with the operator in its
// own process (`cfn operator`) so its peak RSS is its own. The floor, in the
// same run: the same number of pods created directly by this script.
// Targets: <= 30 s, <= 200 MB. Not a test: prints a markdown table.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { KubeClient, resourcePath } = await import(pathToFileURL(join(ROOT, 'dist/operator/k8s/client.js')).href);

const N = Number(process.env.BENCH_SWARMS ?? 1000);
const PARALLEL = Number(process.env.BENCH_CREATE_PARALLEL ?? 16);

function kubeconfig() {
  if (process.env.KUBECONFIG) return { path: process.env.KUBECONFIG, stop: () => {} };
  const up = spawnSync('bash', [join(ROOT, 'test/cluster/cluster.sh'), 'up', '--name', 'bench', '--port-base', 'auto'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (up.status !== 0) throw new Error('cluster up failed');
  return {
    path: up.stdout.trim().split('\n').pop(),
    stop: () => spawnSync('bash', [join(ROOT, 'test/cluster/cluster.sh'), 'down', '--name', 'bench'], { stdio: 'inherit' }),
  };
}

const chartNodeOptions = () => parse(readFileSync(join(ROOT, 'charts/swarm-operator/values.yaml'), 'utf8')).nodeOptions ?? '';

async function pool(n, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/**
 * Swarms that have a coordinator pod, seen through one watch stream: polling
 * a list of up to 1000 pods every 100 ms loaded the API server under test
 * (each answer several MB) and slowed the operator it measured.
 */
function watchPods(c, ns) {
  const swarms = new Set();
  let resolveAll;
  const all = new Promise((r) => (resolveAll = r));
  let target = Infinity;
  const handle = c.watch(`/api/v1/namespaces/${ns}/pods`, { labelSelector: 'app.kubernetes.io/managed-by=swarm-operator', timeoutSeconds: 600 }, (e) => {
    if (e.type !== 'ADDED') return;
    swarms.add(e.object.metadata.labels['swarm.cfn.dev/swarm']);
    if (swarms.size >= target) resolveAll(performance.now());
  });
  handle.done.catch(() => undefined);
  return {
    /** performance.now() when N Swarms had a pod, or undefined after timeoutMs. */
    until: (n, timeoutMs) => {
      target = n;
      if (swarms.size >= n) resolveAll(performance.now());
      let timer;
      const timeout = new Promise((r) => (timer = setTimeout(() => r(undefined), timeoutMs)));
      return Promise.race([all, timeout]).finally(() => clearTimeout(timer));
    },
    stop: () => handle.abort(),
  };
}

async function waitUntil(check, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** User + system CPU seconds of a process so far. */
const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop().split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

const peakRssMb = (pid) => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};

async function metric(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name + '{') || l.startsWith(name + ' '))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
}

async function main() {
  const kc = kubeconfig();
  const c = KubeClient.load(kc.path);
  for (const f of ['swarm.cfn.dev_swarms.yaml', 'swarm.cfn.dev_rolloutpolicies.yaml']) {
    const crd = parse(readFileSync(join(ROOT, 'crds', f), 'utf8'));
    await c.apply(resourcePath({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', name: crd.metadata.name }), crd, {
      fieldManager: 'bench',
      force: true,
    });
  }
  // The chart's default coordinator identity (shared), with the admission policy it installs.
  const IDENTITY = process.env.BENCH_IDENTITY ?? 'shared';
  if (IDENTITY === 'shared') {
    for (const doc of parseAllDocuments(readFileSync(join(ROOT, 'config/rbac/coordinator_admission_policy.yaml'), 'utf8')).map((d) => d.toJS())) {
      const plural = doc.kind === 'ValidatingAdmissionPolicy' ? 'validatingadmissionpolicies' : 'validatingadmissionpolicybindings';
      await c.apply(resourcePath({ group: 'admissionregistration.k8s.io', version: 'v1', plural, name: doc.metadata.name }), doc, {
        fieldManager: 'bench',
        force: true,
      });
    }
  }
  await new Promise((r) => setTimeout(r, 1500));
  const stamp = Date.now().toString(36);
  const nsFloor = `bench-floor-${stamp}`;
  const nsOp = `bench-op-${stamp}`;
  for (const ns of [nsFloor, nsOp]) {
    await c.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await c.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } }).catch(() => {});
  }

  // Floor: the same number of pods, created directly.
  const podBody = (i) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `floor-${i}`, labels: { 'app.kubernetes.io/managed-by': 'swarm-operator' } },
    spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'swarm-operator:bench', args: ['coordinate'] }] },
  });
  let t = performance.now();
  await pool(N, (i) => c.create(`/api/v1/namespaces/${nsFloor}/pods`, podBody(i)));
  const floorMs = performance.now() - t;

  // The operator, in its own process.
  const port = 18000 + Math.floor(Math.random() * 1000);
  const op = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/cfn.js'),
      'operator',
      '--namespaces',
      nsOp,
      '--metrics-port',
      String(port),
      '--metrics-host',
      '127.0.0.1',
      '--no-leader-elect',
      '--coordinator-identity',
      IDENTITY,
      ...(process.env.BENCH_WORKERS ? ['--workers', process.env.BENCH_WORKERS] : []),
    ],
    {
      // The same V8 flags the chart's Deployment sets (values.yaml nodeOptions).
      env: { ...process.env, KUBECONFIG: kc.path, LOG_LEVEL: 'warn', NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS ?? chartNodeOptions() },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  await waitUntil(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => ({ ok: false }))).ok, 30_000);

  const pods = watchPods(c, nsOp);
  t = performance.now();
  await pool(N, (i) =>
    c.create(resourcePath({ group: 'swarm.cfn.dev', version: 'v1alpha1', plural: 'swarms', namespace: nsOp }), {
      apiVersion: 'swarm.cfn.dev/v1alpha1',
      kind: 'Swarm',
      metadata: { name: `s-${i}` },
      // No kubelet runs the pods here: they wait to be scheduled, which is never a fallback.
      spec: { objective: 'benchmark', agents: 10, agent: { command: ['true'] }, coordination: { version: 'v2', fallbackTimeoutSeconds: 600 } },
    }),
  );
  const appliedMs = performance.now() - t;
  const allAt = await pods.until(N, 300_000);
  pods.stop();
  const ok = allAt !== undefined;
  const allPodsMs = (allAt ?? performance.now()) - t;
  const mean = async (name) => (await metric(port, `${name}_sum`)) / Math.max(1, await metric(port, `${name}_count`));
  const requestMs = (await mean('rest_client_request_duration_seconds')) * 1000;
  const requests = await metric(port, 'rest_client_requests_total');
  const reconcileMs = (await mean('controller_runtime_reconcile_time_seconds')) * 1000;
  const queueMs = (await mean('workqueue_queue_duration_seconds')) * 1000;
  const reconciles = await metric(port, 'controller_runtime_reconcile_total');
  const errors = await metric(port, 'controller_runtime_reconcile_errors_total');
  const rss = peakRssMb(op.pid);
  const cpu = cpuSeconds(op.pid);
  // Clean up while the operator still runs: it removes its finalizers.
  for (const ns of [nsFloor, nsOp]) await c.delete(`/api/v1/namespaces/${ns}`).catch(() => {});
  await waitUntil(
    async () =>
      !(await c.get(`/api/v1/namespaces/${nsOp}`).then(
        () => true,
        () => false,
      )),
    120_000,
  );
  op.kill('SIGTERM');
  await new Promise((r) => op.on('close', r));

  const rows = [
    ['swarms applied', String(N), ''],
    [
      'coordinator identity',
      IDENTITY === 'shared'
        ? "shared (one ServiceAccount per namespace + admission policy, the chart's default)"
        : 'per-swarm (ServiceAccount, Role, RoleBinding per Swarm)',
      '',
    ],
    ['time to apply all Swarms', `${(appliedMs / 1000).toFixed(1)} s`, ''],
    ['time until every Swarm has its coordinator pod', ok ? `${(allPodsMs / 1000).toFixed(1)} s` : 'not reached in 300 s', '<= 30 s'],
    ['floor: the same pods created directly', `${(floorMs / 1000).toFixed(1)} s`, ''],
    ['ratio to the floor', `${(allPodsMs / floorMs).toFixed(2)}x`, ''],
    ['reconciles (errors)', `${reconciles} (${errors})`, ''],
    ['reconciles per second', (reconciles / (allPodsMs / 1000)).toFixed(0), ''],
    ['mean reconcile time / mean wait in the queue', `${reconcileMs.toFixed(0)} ms / ${queueMs.toFixed(0)} ms`, ''],
    ['API requests (mean latency to headers)', `${requests} (${requestMs.toFixed(1)} ms)`, ''],
    ['operator CPU (user + system) until then', `${cpu.toFixed(1)} s (${((cpu / (allPodsMs / 1000)) * 100).toFixed(0)}% of one core)`, ''],
    ['operator peak RSS (VmHWM)', `${rss.toFixed(0)} MB`, '<= 200 MB'],
  ];
  const table = ['| operator, 1000 Swarms | value | target |', '|---|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  console.log(table);
  await mkdir(join(ROOT, '.bench'), { recursive: true });
  await writeFile(join(ROOT, '.bench/operator.md'), table + '\n');

  kc.stop();
}

await main();
