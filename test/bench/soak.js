#!/usr/bin/env node
// `npm run bench:soak`: V2 and V1 swarms one after another in one long-lived
// process (as a CI runner or a service embedding the library runs them) for
// SOAK_SECONDS, each through a fresh coordinator (start, objective, stop), as
// `cfn run` and a coordinator pod run one. Checks every swarm's numbers and
// what each leaves behind, and compares the last tenth of the run against its
// first tenth (the baseline, measured in the same run): a leak or a slowdown
// shows as a ratio. The design's stability targets ("V2 stable for 24+ hours",
// "zero V1/V2 resource leaks") are SOAK_SECONDS=86400. Not a test: prints
// markdown, writes it to .bench/soak.md, and exits 1 when a swarm crashed,
// counted wrong or left something behind.
import { readdirSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fmt, median } from './stats.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (path) => import(pathToFileURL(join(ROOT, 'dist', path)).href);
const { BashCoordinator } = await dist('operator/coordination/v2/bash-coordinator.js');
const { SwarmCoordinator } = await dist('operator/coordination/v1/swarm-coordinator.js');
const { createLogger } = await dist('operator/observability/logger.js');
const { listProcesses, processesWithEnv } = await dist('operator/util/proc.js');

// node:sqlite's ExperimentalWarning says nothing about the soak.
process.removeAllListeners('warning');

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const AGENTS = Number(process.env.SOAK_AGENTS ?? 200);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 32);
const RETRIES = 1;

// Every tenth agent fails on each attempt (so exactly 90% are delivered), every
// twentieth leaves a process running in the background (a dev server, a
// watcher), the rest answer after up to 40 ms. The script is the bench's own
// constant: the agent's task reaches it as data on stdin, never as code.
const AGENT = [
  'sh',
  '-c',
  'i=$AGENT_INDEX; case $i in *0) echo "agent $i fails" >&2; exit 3;; *5) sleep 600 & ;; esac; sleep 0.0$((i % 5)); cat; echo " answered by $i"',
];
const EXPECTED_COMPLETED = AGENTS - Math.ceil(AGENTS / 10);

const logger = createLogger({ name: 'soak', level: 'error' });

/** What this process holds and what lies around it: the leak signals. */
function footprint(shm) {
  global.gc?.();
  const mem = process.memoryUsage();
  return {
    fds: readdirSync('/proc/self/fd').length,
    heapMb: mem.heapUsed / 1048576,
    rssMb: mem.rss / 1048576,
    shmEntries: readdirSync(shm).length,
  };
}

/** The processes still carrying the swarm's id, after up to 2 s for a SIGKILL to land. */
async function leftovers(id) {
  for (let i = 0; i < 40; i += 1) {
    const left = await processesWithEnv('SWARM_ID', id);
    if (left.length === 0) return 0;
    await new Promise((r) => setTimeout(r, 50));
  }
  return (await processesWithEnv('SWARM_ID', id)).length;
}

const childCount = async () => (await listProcesses()).filter((p) => p.ppid === process.pid && p.state !== 'Z').length;

const ENGINES = {
  v2: ({ shm }) => new BashCoordinator({ shmPath: shm, logger }),
  v1: ({ dir, id }) => new SwarmCoordinator({ memoryPath: join(dir, `${id}.sqlite`) }),
};

/** One swarm through a fresh coordinator: its figures, its problems, what it left. */
async function swarm(engine, seq, where) {
  const id = `soak-${process.pid}-${engine}-${seq}`;
  const tasks = Array.from({ length: AGENTS }, (_, i) => `task ${i} of swarm ${seq}`);
  const problems = [];
  const t0 = performance.now();
  let status;
  let responses = [];
  const coordinator = ENGINES[engine]({ ...where, id });
  try {
    await coordinator.start();
    const result = await coordinator.executeObjective({
      id,
      description: 'soak objective',
      agents: AGENTS,
      tasks,
      agentCommand: AGENT,
      agentTimeoutSeconds: 30,
      retries: RETRIES,
      concurrency: CONCURRENCY,
      timeoutSeconds: 300,
      maxOutputBytes: 4096,
    });
    status = result.status;
    responses = result.responses;
  } catch (err) {
    problems.push(`crashed: ${err.message}`);
  } finally {
    await coordinator.stop().catch((err) => problems.push(`stop failed: ${err.message}`));
    await rm(join(where.dir, `${id}.sqlite`), { force: true });
  }
  const wallMs = performance.now() - t0;
  if (status) {
    const { completed, failed, total } = status.agents;
    if (status.status !== 'completed' || total !== AGENTS || completed !== EXPECTED_COMPLETED || failed !== AGENTS - EXPECTED_COMPLETED) {
      problems.push(`counted ${JSON.stringify(status.agents)} (${status.status}), expected ${EXPECTED_COMPLETED} completed of ${AGENTS}`);
    }
    const wrong = responses.filter(
      (r) => (r.status === 'completed') !== (r.index % 10 !== 0) || (r.status === 'completed' && r.output !== `${tasks[r.index]} answered by ${r.index}\n`),
    );
    if (responses.length !== AGENTS || wrong.length > 0) problems.push(`${responses.length} responses, ${wrong.length} wrong`);
  }
  const strays = await leftovers(id);
  if (strays > 0) problems.push(`${strays} processes of its agents still running`);
  const children = await childCount();
  if (children > 0) problems.push(`${children} child processes of the soak still running`);
  const after = footprint(where.shm);
  if (after.shmEntries > 0) problems.push(`${after.shmEntries} entries left in ${where.shm}`);
  return { engine, seq, wallMs, delivery: status?.deliveryRate, problems, after };
}

const ratio = (a, b) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : 'n/a');

/**
 * One engine's swarms, in memory that does not grow with the run (the heap it
 * measures is this process's): counts, the swarms of the first tenth of the
 * run's time (the baseline; its first swarm at least) and a ring of as many of the latest ones.
 */
class Tally {
  swarms = 0;
  withProblems = 0;
  firstProblem = undefined;
  minDelivery = Infinity;
  maxDelivery = -Infinity;
  first = [];
  last = [];
  next = 0;

  add(run, inFirstTenth) {
    this.swarms += 1;
    if (run.problems.length > 0) {
      this.withProblems += 1;
      this.firstProblem ??= `#${run.seq}: ${run.problems.join('; ')}`;
    }
    if (Number.isFinite(run.delivery)) {
      this.minDelivery = Math.min(this.minDelivery, run.delivery);
      this.maxDelivery = Math.max(this.maxDelivery, run.delivery);
    }
    const sample = { wallMs: run.wallMs, ...run.after };
    if (inFirstTenth || this.first.length === 0) this.first.push(sample);
    else {
      this.last[this.next] = sample;
      this.next = (this.next + 1) % Math.max(1, this.first.length);
    }
  }

  row(engine) {
    const last = this.last.length > 0 ? this.last : this.first;
    const m = (rs, f) => median(rs.map(f));
    return {
      engine,
      swarms: this.swarms,
      agents: this.swarms * AGENTS,
      delivery: Number.isFinite(this.minDelivery) ? `${fmt(this.minDelivery, 1)}-${fmt(this.maxDelivery, 1)}` : 'n/a',
      problems: this.withProblems,
      wallFirst: m(this.first, (r) => r.wallMs / 1000),
      wallLast: m(last, (r) => r.wallMs / 1000),
      fdsFirst: m(this.first, (r) => r.fds),
      fdsLast: m(last, (r) => r.fds),
      heapFirst: m(this.first, (r) => r.heapMb),
      heapLast: m(last, (r) => r.heapMb),
      rssFirst: m(this.first, (r) => r.rssMb),
      rssLast: m(last, (r) => r.rssMb),
    };
  }
}

async function main() {
  const startedAt = Date.now();
  const loadBefore = loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  const dir = await mkdtemp(join(tmpdir(), 'cfn-soak-'));
  const shm = await mkdtemp('/dev/shm/cfn-soak-');
  const tallies = { v2: new Tally(), v1: new Tally() };
  try {
    for (let seq = 0; Date.now() - startedAt < SECONDS * 1000; seq += 1) {
      for (const engine of ['v2', 'v1']) {
        const run = await swarm(engine, seq, { dir, shm });
        tallies[engine].add(run, Date.now() - startedAt < SECONDS * 100);
        const tail = run.problems.length ? `  PROBLEM: ${run.problems.join('; ')}` : '';
        process.stderr.write(
          `soak: ${engine} #${seq} ${fmt(run.wallMs / 1000, 2)} s delivery ${fmt(run.delivery, 1)}% fds ${run.after.fds} heap ${fmt(run.after.heapMb, 1)} MB${tail}\n`,
        );
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(shm, { recursive: true, force: true });
  }
  const rows = ['v2', 'v1'].map((e) => tallies[e].row(e));
  const problemCount = rows.reduce((n, r) => n + r.problems, 0);
  const lines = [
    '| engine | swarms | agents | delivery % (each swarm) | swarms with a problem | wall s, first tenth → last | last / first | open fds → | heap MB after GC → | last / first | RSS MB → |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.engine.toUpperCase()} | ${r.swarms} | ${r.agents} | ${r.delivery} | ${r.problems} | ${fmt(r.wallFirst, 2)} → ${fmt(r.wallLast, 2)} | ${ratio(r.wallLast, r.wallFirst)} | ${r.fdsFirst} → ${r.fdsLast} | ${fmt(r.heapFirst, 1)} → ${fmt(r.heapLast, 1)} | ${ratio(r.heapLast, r.heapFirst)} | ${fmt(r.rssFirst, 0)} → ${fmt(r.rssLast, 0)} |`,
    ),
  ];
  const notes = [
    '',
    `${AGENTS} agents a swarm at concurrency ${CONCURRENCY}, ${RETRIES} retry: every tenth agent fails each attempt (delivery exactly ${fmt((EXPECTED_COMPLETED / AGENTS) * 100, 1)}%), every twentieth leaves \`sleep 600\` running in the background, the rest answer their own task after up to 40 ms. V2 and V1 alternate, each swarm through a fresh coordinator in this one process.`,
    "A problem: an error or a stop that failed (a crash), a count or response other than expected, a process of the swarm still running 2 s after the run, a child process of the soak, or an entry left on the tmpfs. fds, heap (after a forced GC) and RSS: this process after each swarm; first and last: medians over each engine's swarms in the first tenth of the run's time and over as many of its latest swarms.",
    `${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}. Load average before/after: ${loadBefore} / ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}. Measured ${new Date(startedAt).toISOString()}, ${fmt((Date.now() - startedAt) / 1000, 0)} s.`,
    '',
    problemCount === 0
      ? 'No swarm crashed, counted wrong or left anything behind.'
      : `${problemCount} swarms with a problem; the first: ${rows.filter((r) => tallies[r.engine].firstProblem).map((r) => `${r.engine} ${tallies[r.engine].firstProblem}`)[0]}`,
  ];
  const md = `${lines.join('\n')}\n${notes.join('\n')}\n`;
  process.stdout.write(md);
  await mkdir(join(ROOT, '.bench'), { recursive: true });
  await writeFile(join(ROOT, '.bench', 'soak.md'), md);
  if (problemCount > 0) process.exitCode = 1;
}

await main();
