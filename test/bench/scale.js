#!/usr/bin/env node
// `npm run bench:scale`: one swarm at a time on a local cluster of real nodes
// (default 3, each a kubelet + containerd in its own network namespace), the
// operator in its own process so its CPU and peak RSS are its own. Layouts
// compared in the same run:
//   - 10000 trivial agents (`true`): 1 shard against 3 shards (one per node);
//   - 1000 agents that each sleep 1 s and whose agent container requests cpu:
//     1 shard, 3 shards, and `shards: auto` (heavy agents: agents / concurrency).
// Wall time is from apply to the Swarm's final phase (pod scheduling, image
// already on the nodes, coordinator start, agents, status). The machine has
// 2 cores for all nodes: trivial agents are CPU-bound whatever the layout;
// sleeping agents show what spreading buys. Not a test: prints markdown tables.
// Reuses a cluster with BENCH_KUBECONFIG (its nodes must have the project image).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'yaml';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { KubeClient, resourcePath } = await import(pathToFileURL(join(ROOT, 'dist/operator/k8s/client.js')).href);

const NODES = Number(process.env.BENCH_SCALE_NODES ?? 3);
const TRIVIAL = Number(process.env.BENCH_SCALE_AGENTS ?? 10000);
const SLEEPERS = Number(process.env.BENCH_SCALE_SLEEP_AGENTS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_SCALE_CONCURRENCY ?? 32);
const NAME = 'bench-scale';
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
const IMAGE = `swarm-operator:${VERSION}`;
const SWARMS = { group: 'swarm.cfn.dev', version: 'v1alpha1', plural: 'swarms' };

function sh(args, what) {
  const r = spawnSync('bash', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status})`);
  return r.stdout;
}

/** A cluster of NODES real nodes with the project image on each (built here unless BENCH_SKIP_IMAGE_BUILD=1 finds it). */
function cluster() {
  if (process.env.BENCH_KUBECONFIG) return { path: process.env.BENCH_KUBECONFIG, stop: () => {} };
  const imageDir = join(ROOT, '.local', `image-${NAME}`);
  if (process.env.BENCH_SKIP_IMAGE_BUILD !== '1') sh([join(ROOT, 'scripts/image/build.sh'), '--out-dir', imageDir], 'image build');
  const out = spawnSync('bash', [join(ROOT, 'test/cluster/cluster.sh'), 'up', '--name', NAME, '--port-base', 'auto', '--nodes', String(NODES)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, IMAGE_DIR: imageDir },
  });
  if (out.status !== 0) throw new Error('cluster up failed');
  return { path: out.stdout.trim().split('\n').pop(), stop: () => sh([join(ROOT, 'test/cluster/cluster.sh'), 'down', '--name', NAME], 'cluster down') };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** User + system CPU seconds of a process so far. */
const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop().split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const rssMb = (pid, field) => {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};

const swarmBody = (name, agents, shards, command, cpu) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: {
    objective: 'bench:scale',
    agents,
    shards,
    coordination: { version: 'v2', fallbackTimeoutSeconds: 120 },
    agent: { command, retries: 0, concurrency: CONCURRENCY, timeoutSeconds: 120, ...(cpu ? { resources: { requests: { cpu } } } : {}) },
    v2: { shmSizeLimit: '256Mi' },
    // Timed: coordination, not volume provisioning.
    results: { type: 'emptyDir' },
  },
});

/** Applies one swarm, waits for its final phase; wall time, shard figures, operator CPU and RSS over the case. */
async function runCase(c, op, ns, label, body) {
  await c.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const cpu0 = cpuSeconds(op.pid);
  let rssMax = rssMb(op.pid, 'VmRSS');
  const t0 = performance.now();
  await c.create(resourcePath({ ...SWARMS, namespace: ns }), body);
  let s;
  for (;;) {
    await sleep(250);
    rssMax = Math.max(rssMax, rssMb(op.pid, 'VmRSS'));
    s = await c.get(resourcePath({ ...SWARMS, namespace: ns, name: body.metadata.name }));
    if (s.status?.phase === 'Succeeded' || s.status?.phase === 'Failed') break;
    if (performance.now() - t0 > 1_800_000) throw new Error(`${label}: not finished in 30 min (phase ${s.status?.phase})`);
  }
  const wallS = (performance.now() - t0) / 1000;
  const shards = s.status?.shards ?? [];
  // A single shard's progress is the swarm's own (top-level) figures.
  const times = shards.map((x) => ((shards.length === 1 ? s.status.coordinationTimeMs : x.coordinationTimeMs) ?? 0) / 1000);
  const perNode = new Map();
  for (const x of shards)
    perNode.set(x.node ?? '?', (perNode.get(x.node ?? '?') ?? 0) + (shards.length === 1 ? (s.status.agents?.total ?? 0) : (x.agents?.total ?? 0)));
  const row = {
    label,
    agents: body.spec.agents,
    shards: shards.length,
    phase: s.status.phase,
    completed: s.status.agents?.completed ?? 0,
    wallS,
    agentsPerS: (s.status.agents?.completed ?? 0) / wallS,
    shardSpread: times.length ? `${Math.min(...times).toFixed(1)}-${Math.max(...times).toFixed(1)} s` : '-',
    perNode: [...perNode.entries()]
      .sort()
      .map(([n, a]) => `${n.replace('swarm-node-', 'n')}:${a}`)
      .join(' '),
    opCpuS: cpuSeconds(op.pid) - cpu0,
    opRssMb: rssMax,
  };
  await c.delete(`/api/v1/namespaces/${ns}`).catch(() => {});
  console.error(
    `[bench:scale] ${label}: ${row.phase} ${row.completed}/${row.agents} in ${row.wallS.toFixed(1)} s over ${row.shards} shard(s) (${row.perNode})`,
  );
  return row;
}

function table(title, rows) {
  const base = rows[0].wallS;
  const lines = [
    `| ${title} | shards | phase | completed | wall time | agents/s | vs 1 shard | shard coordination time (min-max) | agents per node | operator CPU | operator RSS max |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.shards} | ${r.phase} | ${r.completed}/${r.agents} | ${r.wallS.toFixed(1)} s | ${r.agentsPerS.toFixed(0)} | ${(base / r.wallS).toFixed(2)}x faster | ${r.shardSpread} | ${r.perNode} | ${r.opCpuS.toFixed(1)} s | ${r.opRssMb.toFixed(0)} MB |`,
    ),
  ];
  return lines.join('\n');
}

async function main() {
  const kc = cluster();
  const c = KubeClient.load(kc.path);
  for (const f of ['swarm.cfn.dev_swarms.yaml', 'swarm.cfn.dev_rolloutpolicies.yaml']) {
    const crd = parse(readFileSync(join(ROOT, 'crds', f), 'utf8'));
    await c.apply(resourcePath({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', name: crd.metadata.name }), crd, {
      fieldManager: 'bench',
      force: true,
    });
  }
  await sleep(1500);
  const stamp = Date.now().toString(36);
  const port = 18000 + Math.floor(Math.random() * 1000);
  const op = spawn(
    process.execPath,
    [join(ROOT, 'bin/cfn.js'), 'operator', '--image', IMAGE, '--metrics-port', String(port), '--metrics-host', '127.0.0.1', '--no-leader-elect'],
    {
      env: { ...process.env, KUBECONFIG: kc.path, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  try {
    for (let i = 0; i < 300; i++) {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => ({ ok: false }))).ok) break;
      await sleep(100);
    }
    const trivial = [];
    for (const shards of [1, NODES]) {
      trivial.push(await runCase(c, op, `scale-t${shards}-${stamp}`, `${TRIVIAL} × true, ${shards} shard(s)`, swarmBody('trivial', TRIVIAL, shards, ['true'])));
    }
    const sleepers = [];
    for (const shards of [1, NODES, 'auto']) {
      sleepers.push(
        await runCase(
          c,
          op,
          `scale-s${shards}-${stamp}`,
          `${SLEEPERS} × sleep 1 (cpu 50m), shards ${shards}`,
          swarmBody('sleepers', SLEEPERS, shards, ['sleep', '1'], '50m'),
        ),
      );
    }
    const out = [
      `bench:scale, ${NODES} nodes on one ${(await import('node:os')).cpus().length}-core machine, concurrency ${CONCURRENCY} per shard, results emptyDir, V2`,
      '',
      table('trivial agents', trivial),
      '',
      table('sleeping agents', sleepers),
    ].join('\n');
    console.log(out);
    await mkdir(join(ROOT, '.bench'), { recursive: true });
    await writeFile(join(ROOT, '.bench/scale.md'), out + '\n');
  } finally {
    op.kill('SIGTERM');
    await new Promise((r) => op.on('close', r));
    kc.stop();
  }
}

await main();
