#!/usr/bin/env node
// `npm run bench`: V2 (flat, hybrid) against the xargs -P floor, at 100/500/1000
// agents with `true` and `sleep 0.1`. Not a test: prints a markdown table and
// writes it to .bench/latest.md. Engines are pluggable (ENGINES below) so a V1
// column and extra rows (version detection timing) can be added later.
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg as osLoad } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = join(ROOT, 'dist');
const { listProcesses, descendants } = await import(pathToFileURL(join(DIST, 'operator/util/proc.js')).href);

const SIZES = (process.env.BENCH_SIZES ?? '100,500,1000').split(',').map(Number);
const TOPOLOGIES = (process.env.BENCH_TOPOLOGIES ?? 'flat,hybrid').split(',');
const COMMANDS = [
  { label: '`true`', argv: ['true'] },
  { label: '`sleep 0.1`', argv: ['sleep', '0.1'] },
];
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const SAMPLE_MS = 20;

/** Runs a command, sampling the RSS of its process tree from /proc every SAMPLE_MS. */
function runSampled(argv, { input } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peakTreeKb = 0;
    let peakChildrenKb = 0;
    let sampling = false;
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setInterval(async () => {
      if (sampling) return;
      sampling = true;
      try {
        const tree = descendants(await listProcesses(), child.pid);
        const total = tree.reduce((s, p) => s + p.rssKb, 0);
        const others = tree.filter((p) => p.pid !== child.pid).reduce((s, p) => s + p.rssKb, 0);
        peakTreeKb = Math.max(peakTreeKb, total);
        peakChildrenKb = Math.max(peakChildrenKb, others);
      } finally {
        sampling = false;
      }
    }, SAMPLE_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({ code, stdout, stderr, wallMs: performance.now() - started, peakTreeKb, peakChildrenKb });
    });
    child.stdin.end(input ?? '');
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

let caseSeq = 0;

/** Each engine: run(case) -> { wallMs, delivery, p50Ms, p99Ms, peakTreeKb, peakEngineKb }. */
const ENGINES = {
  v2: async ({ topology, agents, command }) => {
    caseSeq += 1;
    const spec = { id: `bench-${process.pid}-${caseSeq}`, topology, agents, command: command.argv, concurrency: Math.min(CONCURRENCY, agents) };
    const r = await runSampled([process.execPath, join(ROOT, 'test/bench/v2-case.js'), DIST, JSON.stringify(spec)]);
    if (r.code !== 0) throw new Error(`v2 case ${topology}/${agents}/${command.label} exited ${r.code}: ${r.stderr.trim().split('\n').pop()}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    const lat = out.latencyUs.sort((a, b) => a - b);
    return {
      wallMs: out.wallMs,
      engineMs: out.status.coordinationTime,
      delivery: out.status.deliveryRate,
      failed: out.status.agents.failed,
      p50Ms: percentile(lat, 50) / 1000,
      p99Ms: percentile(lat, 99) / 1000,
      latencySamples: lat.length,
      peakTreeKb: r.peakTreeKb,
      peakEngineKb: r.peakChildrenKb,
      preflightMs: out.preflightMs,
    };
  },
  xargs: async ({ agents, command }) => {
    const input = Array.from({ length: agents }, (_, i) => `${i}\n`).join('');
    // -I{} with no {} in the command: one run of the command per input line, arguments unchanged.
    const r = await runSampled(['xargs', '-P', String(Math.min(CONCURRENCY, agents)), '-I{}', ...command.argv], { input });
    if (r.code !== 0) throw new Error(`xargs ${command.label} exited ${r.code}: ${r.stderr.trim()}`);
    return { wallMs: r.wallMs, delivery: 100, peakTreeKb: r.peakTreeKb };
  },
};

const fmt = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
// 0: the process tree ended before the first sample.
const mb = (kb) => (kb > 0 ? (kb / 1024).toFixed(0) : 'n/a');

/**
 * Table columns: [header, (row) => cell]. A row is { topology, agents, command, results: { v2, xargs, ... } }.
 * A V1 column is one more runner in ENGINES plus entries here.
 */
const COLUMNS = [
  ['topology', (r) => r.topology],
  ['agents', (r) => r.agents],
  ['agent command', (r) => r.command.label],
  ['V2 wall s', (r) => fmt(r.results.v2.wallMs / 1000)],
  // The engine's own coordinationTime (status.json): wall minus this is the TypeScript side's share.
  ['engine s', (r) => fmt(r.results.v2.engineMs / 1000)],
  ['V2 agents/s', (r) => fmt(r.agents / (r.results.v2.wallMs / 1000), 0)],
  ['delivery %', (r) => fmt(r.results.v2.delivery, 1)],
  ['msg latency p50 ms', (r) => fmt(r.results.v2.p50Ms)],
  ['p99 ms', (r) => fmt(r.results.v2.p99Ms)],
  ['peak RSS MB: tree (w/o Node)', (r) => `${mb(r.results.v2.peakTreeKb)} (${mb(r.results.v2.peakEngineKb)})`],
  ['xargs -P wall s', (r) => fmt(r.results.xargs.wallMs / 1000)],
  ['xargs peak RSS MB', (r) => mb(r.results.xargs.peakTreeKb)],
  ['V2 / xargs wall', (r) => `${fmt(r.results.v2.wallMs / r.results.xargs.wallMs, 1)}x`],
];

/** One-off timings printed under the table: [label, async () => milliseconds]. Version detection goes here. */
const TIMINGS = [
  ['V2 preflight (`health-monitor.sh preflight --json`, via BashCoordinator.start)', async (rows) => percentile(rows.map((r) => r.results.v2.preflightMs).sort((a, b) => a - b), 50)],
];

function loadavg() {
  return osLoad().map((l) => l.toFixed(1)).join(' ');
}

async function main() {
  const startedAt = Date.now();
  const loadBefore = loadavg();
  const rows = [];
  for (const command of COMMANDS) {
    for (const agents of SIZES) {
      // The floor does not depend on topology: run it once per size and command.
      const xargs = await ENGINES.xargs({ agents, command });
      for (const topology of TOPOLOGIES) {
        process.stderr.write(`bench: v2 ${topology} ${agents} agents ${command.label} ... `);
        const v2 = await ENGINES.v2({ topology, agents, command });
        process.stderr.write(`${fmt(v2.wallMs / 1000)} s\n`);
        rows.push({ topology, agents, command, results: { v2, xargs } });
      }
    }
  }
  const lines = [`| ${COLUMNS.map(([h]) => h).join(' | ')} |`, `|${COLUMNS.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${COLUMNS.map(([, cell]) => cell(row)).join(' | ')} |`);
  const timingLines = [];
  for (const [label, measure] of TIMINGS) timingLines.push(`- ${label}: ${fmt(await measure(rows), 0)} ms (median)`);
  const notes = [
    '',
    ...timingLines,
    '',
    `Concurrency ${CONCURRENCY} for V2 and for the \`xargs -P\` floor (capped at the agent count); retries 0; ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, /dev/shm tmpfs. Load average before/after: ${loadBefore} / ${loadavg()}.`,
    'V2 wall: `BashCoordinator.executeObjective` from writing the objective to the root removed (preflight excluded); engine s: the coordinationTime the engine reports in status.json. ' +
      'xargs floor: `xargs -P C -I{} CMD` over N input lines (the same command N times, no task input, no result collection). Delivery: responses delivered / agents.',
    'Message latency: `<root>/metrics/latency.us` (publish to consume, per message, written by the consumer), read just before the root is removed.',
    `Peak RSS: sum of RSS (/proc/<pid>/stat) over the case process tree (Node coordinator + bash engine + agents), sampled every ${SAMPLE_MS} ms; in parentheses without the Node process. Shared pages of forked bash processes are counted once per process, so this overstates real memory use.`,
    `Measured ${new Date(startedAt).toISOString()}, bench runtime ${fmt((Date.now() - startedAt) / 1000, 0)} s.`,
  ];
  const md = `${lines.join('\n')}\n${notes.join('\n')}\n`;
  process.stdout.write(md);
  await mkdir(join(ROOT, '.bench'), { recursive: true });
  await writeFile(join(ROOT, '.bench', 'latest.md'), md);
}

await main();
