#!/usr/bin/env node
// `npm run bench`: V2 and V1 side by side, against the xargs -P
// floor, at 100/500/1000 agents with `true` and `sleep 0.1`; then version
// detection (per call) and V2 -> V1 fallback times. Not a test: prints markdown
// and writes it to .bench/latest.md. Engines are pluggable (ENGINES below).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg as osLoad } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fmt, median, percentile } from './stats.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = join(ROOT, 'dist');
const { detectVersion } = await import(pathToFileURL(join(DIST, 'operator/coordination/version/decide-version.js')).href);
const { v2Preflight } = await import(pathToFileURL(join(DIST, 'operator/coordination/version/v2-preflight.js')).href);
const { CoordinatorFactory } = await import(pathToFileURL(join(DIST, 'operator/coordination/factory/coordinator-factory.js')).href);

// The fallback timings open V1's node:sqlite in this process: its ExperimentalWarning is noise here.
process.removeAllListeners('warning');

const SIZES = (process.env.BENCH_SIZES ?? '100,500,1000').split(',').map(Number);
// Trim V1 with BENCH_V1_SIZES / BENCH_V1_COMMANDS (0: none).
const V1_SIZES = (process.env.BENCH_V1_SIZES ?? SIZES.join(',')).split(',').map(Number);
const V1_COMMANDS = (process.env.BENCH_V1_COMMANDS ?? 'true,sleep 0.1').split(',');
const DETECT_CALLS = Number(process.env.BENCH_DETECT_CALLS ?? 20000);
const FALLBACK_RUNS = Number(process.env.BENCH_FALLBACK_RUNS ?? 10);
const COMMANDS = [
  { label: '`true`', argv: ['true'] },
  { label: '`sleep 0.1`', argv: ['sleep', '0.1'] },
];
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
// 100 ms: sampling /proc every 20 ms took measurable CPU from the engine (a 500-agent
// V2 run 1.5 -> 1.9 s); the peak of a tree of 64 agents holds for most of a run.
const SAMPLE_MS = 100;

/**
 * Runs a command, sampling the RSS of its process tree from /proc every
 * SAMPLE_MS in a separate process at nice 19 (rss-sampler.js), so that the
 * sampling does not take CPU from what it measures.
 */
function runSampled(argv, { input, env } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const sampler = spawn('nice', ['-n', '19', process.execPath, join(ROOT, 'test/bench/rss-sampler.js'), String(child.pid), String(SAMPLE_MS)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    let stderr = '';
    let sampled = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    sampler.stdout.setEncoding('utf8').on('data', (d) => (sampled += d));
    const samplerDone = new Promise((res) => sampler.on('close', res));
    child.on('error', reject);
    child.on('close', async (code) => {
      const wallMs = performance.now() - started;
      sampler.kill('SIGTERM');
      await samplerDone;
      const { peakTreeKb = 0, peakChildrenKb = 0 } = sampled.trim() ? JSON.parse(sampled) : {};
      resolve({ code, stdout, stderr, wallMs, peakTreeKb, peakChildrenKb });
    });
    child.stdin.end(input ?? '');
  });
}

let caseSeq = 0;

/** Each engine: run(case) -> { wallMs, delivery, p50Ms, p99Ms, peakTreeKb, peakEngineKb }. */
const ENGINES = {
  v2: async ({ agents, command }) => {
    caseSeq += 1;
    const spec = { id: `bench-${process.pid}-${caseSeq}`, agents, command: command.argv, concurrency: Math.min(CONCURRENCY, agents) };
    const r = await runSampled([process.execPath, join(ROOT, 'test/bench/v2-case.js'), DIST, JSON.stringify(spec)]);
    if (r.code !== 0) throw new Error(`v2 case ${agents}/${command.label} exited ${r.code}: ${r.stderr.trim().split('\n').pop()}`);
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
      launcher: out.launcher,
    };
  },
  v1: async ({ agents, command }) => {
    caseSeq += 1;
    const spec = { id: `bench-v1-${process.pid}-${caseSeq}`, agents, command: command.argv, concurrency: Math.min(CONCURRENCY, agents) };
    const r = await runSampled([process.execPath, join(ROOT, 'test/bench/v1-case.js'), DIST, JSON.stringify(spec)]);
    if (r.code !== 0) throw new Error(`v1 case ${agents}/${command.label} exited ${r.code}: ${r.stderr.trim().split('\n').pop()}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    return { wallMs: out.wallMs, delivery: out.status.deliveryRate, failed: out.status.agents.failed, peakTreeKb: r.peakTreeKb, startMs: out.startMs };
  },
  xargs: async ({ agents, command, timeout = false }) => {
    const input = Array.from({ length: agents }, (_, i) => `${i}\n`).join('');
    // -I{} with no {} in the command: one run of the command per input line, arguments unchanged.
    // With `timeout`: each agent bounded like the engine bounds it (one timeout process per agent).
    const argv = timeout ? ['timeout', '--foreground', '-k', '2', '60', ...command.argv] : command.argv;
    const r = await runSampled(['xargs', '-P', String(Math.min(CONCURRENCY, agents)), '-I{}', ...argv], { input });
    if (r.code !== 0) throw new Error(`xargs ${command.label} exited ${r.code}: ${r.stderr.trim()}`);
    return { wallMs: r.wallMs, delivery: 100, peakTreeKb: r.peakTreeKb };
  },
};

// 0: the process tree ended before the first sample.
const mb = (kb) => (kb > 0 ? (kb / 1024).toFixed(0) : 'n/a');

/**
 * Table columns: [header, (row) => cell, in the README]. A row is { agents, command, results: { v2, xargs, ... } }.
 * The README's table has the columns a reader needs; docs/performance.md has every column.
 * A V1 column is one more runner in ENGINES plus entries here.
 */
const COLUMNS = [
  ['agents', (r) => r.agents, true],
  ['agent command', (r) => r.command.label, true],
  ['V2 wall s', (r) => fmt(r.results.v2.wallMs / 1000), true],
  // The engine's own coordinationTime (status.json): wall minus this is the TypeScript side's share.
  ['engine s', (r) => fmt(r.results.v2.engineMs / 1000), false],
  ['V2 agents/s', (r) => fmt(r.agents / (r.results.v2.wallMs / 1000), 0), true],
  ['delivery %', (r) => fmt(r.results.v2.delivery, 1), true],
  ['msg latency p50 ms', (r) => fmt(r.results.v2.p50Ms), true],
  ['p99 ms', (r) => fmt(r.results.v2.p99Ms), false],
  ['peak RSS MB: tree (w/o Node)', (r) => `${mb(r.results.v2.peakTreeKb)} (${mb(r.results.v2.peakEngineKb)})`, true],
  ['V1 wall s', (r) => (r.results.v1 ? fmt(r.results.v1.wallMs / 1000) : 'n/a'), true],
  ['V1 agents/s', (r) => (r.results.v1 ? fmt(r.agents / (r.results.v1.wallMs / 1000), 0) : 'n/a'), false],
  ['V1 delivery %', (r) => (r.results.v1 ? fmt(r.results.v1.delivery, 1) : 'n/a'), false],
  ['V1 peak RSS MB', (r) => (r.results.v1 ? mb(r.results.v1.peakTreeKb) : 'n/a'), false],
  ['V2 / V1 wall', (r) => (r.results.v1 ? `${fmt(r.results.v2.wallMs / r.results.v1.wallMs, 1)}x` : 'n/a'), false],
  ['xargs -P wall s', (r) => fmt(r.results.xargs.wallMs / 1000), false],
  ['xargs peak RSS MB', (r) => mb(r.results.xargs.peakTreeKb), false],
  ['V2 / xargs wall', (r) => `${fmt(r.results.v2.wallMs / r.results.xargs.wallMs, 1)}x`, true],
  ['xargs -P + timeout wall s', (r) => fmt(r.results.xargsTimeout.wallMs / 1000), false],
  ['V2 / (xargs + timeout) wall', (r) => `${fmt(r.results.v2.wallMs / r.results.xargsTimeout.wallMs, 1)}x`, false],
];

/** A markdown table of `columns` over `rows`. */
function table(columns, rows) {
  const lines = [`| ${columns.map(([h]) => h).join(' | ')} |`, `|${columns.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${columns.map(([, cell]) => cell(row)).join(' | ')} |`);
  return lines;
}

/** Milliseconds per call of fn(i), each call timed alone: { median, p99 }. */
function perCall(n, fn) {
  const ms = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn(i);
    ms[i] = performance.now() - t;
  }
  ms.sort((a, b) => a - b);
  return { median: percentile(ms, 50), p99: percentile(ms, 99) };
}

/** V2 chosen but failing its preflight -> V1 started, through CoordinatorFactory.create: ms per run. */
async function fallbackTimes(v2Options) {
  const dir = await mkdtemp(join(tmpdir(), 'cfn-bench-fallback-'));
  const ms = [];
  try {
    for (let i = 0; i < FALLBACK_RUNS; i++) {
      const t = performance.now();
      const created = await CoordinatorFactory.create({
        id: `bench-fallback-${i}`,
        explicit: { version: 'v2', source: 'bench' },
        env: { PATH: process.env.PATH },
        coordination: {},
        v1: { memoryPath: join(dir, `m-${i}.sqlite`) },
        v2: v2Options,
      });
      const elapsed = performance.now() - t;
      if (!created.fallback) throw new Error('bench: expected a fallback to V1');
      await created.coordinator.stop();
      ms.push(elapsed);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  ms.sort((a, b) => a - b);
  return { median: percentile(ms, 50), p99: ms[ms.length - 1] };
}

/**
 * Timings in a second table: [what, how measured, async (rows) => { median, p99 } in ms, target].
 * p99 is the worst of the runs where only a few are made.
 */
const TIMINGS = [
  [
    'version detection: rollout (V2_ROLLOUT_PERCENTAGE=10)',
    `detectVersion per call, ${DETECT_CALLS} distinct swarm ids`,
    async () => perCall(DETECT_CALLS, (i) => detectVersion({ id: `swarm-${i}`, env: { V2_ROLLOUT_PERCENTAGE: '10' }, coordination: {} })),
    '< 1 ms',
  ],
  [
    'version detection: COORDINATION_VERSION=v2',
    `detectVersion per call, ${DETECT_CALLS} calls`,
    async () => perCall(DETECT_CALLS, (i) => detectVersion({ id: `swarm-${i}`, env: { COORDINATION_VERSION: 'v2' }, coordination: {} })),
    '< 1 ms',
  ],
  [
    'version detection: auto (TypeScript V2 preflight)',
    `detectVersion per call with coordination.version=auto (tmpfs probe, memoised bash version), ${Math.min(DETECT_CALLS, 2000)} calls`,
    async () =>
      perCall(Math.min(DETECT_CALLS, 2000), (i) =>
        detectVersion({ id: `swarm-${i}`, env: {}, coordination: { version: 'auto' }, preflight: () => v2Preflight({ shmPath: '/dev/shm/cfn' }) }),
      ),
    '< 1 ms',
  ],
  [
    'fallback: V2 preflight fails (shm not writable) -> V1 started',
    `CoordinatorFactory.create, bash preflight on /proc/cfn-bench, then V1 (SQLite) start; ${FALLBACK_RUNS} runs`,
    async () => fallbackTimes({ shmPath: '/proc/cfn-bench' }),
    '< 5000 ms',
  ],
  [
    'fallback: bash missing -> V1 started',
    `CoordinatorFactory.create, no bash at the configured path, then V1 start; ${FALLBACK_RUNS} runs`,
    async () => fallbackTimes({ bashPath: '/nonexistent/bash' }),
    '< 5000 ms',
  ],
  [
    'V2 preflight (`health-monitor.sh preflight --json`, via BashCoordinator.start)',
    'one per V2 case above',
    async (rows) => ({ median: median(rows.map((r) => r.results.v2.preflightMs)), p99: Math.max(...rows.map((r) => r.results.v2.preflightMs)) }),
    '',
  ],
  [
    'V1 start (SQLite memory open)',
    'one per V1 case above',
    async (rows) => {
      const starts = rows.filter((r) => r.results.v1).map((r) => r.results.v1.startMs);
      return { median: median(starts), p99: Math.max(...starts) };
    },
    '',
  ],
];

const ms3 = (n) => (Number.isFinite(n) ? (n < 1 ? n.toFixed(4) : n.toFixed(n < 100 ? 1 : 0)) : 'n/a');

function loadavg() {
  return osLoad()
    .map((l) => l.toFixed(1))
    .join(' ');
}

async function main() {
  const startedAt = Date.now();
  const loadBefore = loadavg();
  const rows = [];
  for (const command of COMMANDS) {
    for (const agents of SIZES) {
      const xargs = await ENGINES.xargs({ agents, command });
      const xargsTimeout = await ENGINES.xargs({ agents, command, timeout: true });
      let v1;
      if (V1_SIZES.includes(agents) && V1_COMMANDS.includes(command.argv.join(' '))) {
        process.stderr.write(`bench: v1 ${agents} agents ${command.label} ... `);
        v1 = await ENGINES.v1({ agents, command });
        process.stderr.write(`${fmt(v1.wallMs / 1000)} s\n`);
      }
      process.stderr.write(`bench: v2 ${agents} agents ${command.label} ... `);
      const v2 = await ENGINES.v2({ agents, command });
      if (!v2.launcher.endsWith('(local)')) throw new Error(`v2 case did not run its agents through a local launcher: ${v2.launcher}`);
      process.stderr.write(`${fmt(v2.wallMs / 1000)} s\n`);
      rows.push({ agents, command, results: { v2, xargs, xargsTimeout, ...(v1 ? { v1 } : {}) } });
    }
  }
  const lines = table(COLUMNS, rows);
  const readmeLines = table(
    COLUMNS.filter(([, , readme]) => readme),
    rows,
  );
  const timingLines = ['| timing | median ms | p99 ms (max of the runs when few) | target | how |', '|---|---|---|---|---|'];
  const readmeTimingLines = ['| timing | median ms | target |', '|---|---|---|'];
  for (const [label, how, measure, target] of TIMINGS) {
    process.stderr.write(`bench: ${label} ...\n`);
    const t = await measure(rows);
    timingLines.push(`| ${label} | ${ms3(t.median)} | ${ms3(t.p99)} | ${target} | ${how} |`);
    readmeTimingLines.push(`| ${label} | ${ms3(t.median)} | ${target} |`);
  }
  const notes = [
    '',
    ...timingLines,
    '',
    `Concurrency ${CONCURRENCY} for V2, V1 and the \`xargs -P\` floor (capped at the agent count); retries 0; ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, /dev/shm tmpfs. Load average before/after: ${loadBefore} / ${loadavg()}.`,
    'V2 wall: `BashCoordinator.executeObjective` from writing the objective to the root removed (preflight excluded); engine s: the coordinationTime the engine reports in status.json. ' +
      'V1 wall: `SwarmCoordinator.executeObjective` on a fresh SQLite memory (start and stop excluded), run once per size and command; V1 peak RSS: the case process tree (Node + agents). ' +
      "V2 agents are started by the agent launcher (bash/native/launcher.c) as a process of its own, over the same channel as the coordinator pod's agent container (`launcher serve`: posix_spawn, timeouts, the responses); each dispatcher's `launcher relay` hands them to it through the run's `launcher hub` and validates and publishes the responses. V1 runs every attempt of a run through one `launcher session`. " +
      'xargs floor: `xargs -P C -I{} CMD` over N input lines (the same command N times, no task input, no result collection); xargs + timeout: the same with `timeout --foreground -k 2 60 CMD`, each agent bounded in time as the engine bounds it. Delivery: completed agents / agents (the deliveryRate of the status).',
    'Message latency: `<root>/metrics/latency.us` (publish to consume, per message, written by the consumer), read just before the root is removed.',
    `Peak RSS: sum of RSS (/proc/<pid>/stat) over the case process tree (Node coordinator + bash engine + agents), sampled every ${SAMPLE_MS} ms by a separate process at nice 19 (rss-sampler.js); in parentheses without the Node process. Shared pages of forked bash processes are counted once per process, so this overstates real memory use.`,
    `Measured ${new Date(startedAt).toISOString()}, bench runtime ${fmt((Date.now() - startedAt) / 1000, 0)} s.`,
  ];
  const full = `${lines.join('\n')}\n${notes.join('\n')}\n`;
  const readme = `${readmeLines.join('\n')}\n\n${readmeTimingLines.join('\n')}\n`;
  const md = `## README.md (the columns a reader needs)\n\n${readme}\n## docs/performance.md (every column, and how each is measured)\n\n${full}`;
  process.stdout.write(md);
  await mkdir(join(ROOT, '.bench'), { recursive: true });
  await writeFile(join(ROOT, '.bench', 'latest.md'), md);
}

await main();
