// One V2 benchmark case in its own process (so the parent can measure this
// process tree's RSS alone): runs the objective through the built
// BashCoordinator, harvests metrics/latency.us before cleanup, prints one JSON line.
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [, , distRoot, caseJson] = process.argv;
const c = JSON.parse(caseJson);
const { BashCoordinator } = await import(pathToFileURL(join(distRoot, 'operator/coordination/v2/bash-coordinator.js')).href);
const { createLogger } = await import(pathToFileURL(join(distRoot, 'operator/observability/logger.js')).href);

let latencyUs = [];
const coordinator = new BashCoordinator({
  logger: createLogger({ name: 'bench', level: 'error' }),
  ...(c.shmPath ? { shmPath: c.shmPath } : {}),
  beforeCleanup: async (root) => {
    const text = await readFile(join(root, 'metrics', 'latency.us'), 'utf8').catch(() => '');
    latencyUs = text
      .split('\n')
      .filter((l) => /^\d+$/.test(l))
      .map(Number);
  },
});

const t0 = performance.now();
await coordinator.start();
const preflightMs = performance.now() - t0;
// Where the agents' launcher runs (the preflight's launcher check: "<path> (local)" or "<path> (served at DIR)").
const launcher = (await coordinator.healthCheck()).checks.launcher?.detail ?? 'unknown';
const t1 = performance.now();
const result = await coordinator.executeObjective({
  id: c.id,
  description: 'benchmark objective\n',
  agents: c.agents,
  agentCommand: c.command,
  agentTimeoutSeconds: 60,
  retries: 0,
  concurrency: c.concurrency,
  timeoutSeconds: 120,
  maxOutputBytes: 65536,
});
const wallMs = performance.now() - t1;
await coordinator.stop();
process.stdout.write(`${JSON.stringify({ wallMs, preflightMs, launcher, status: result.status, responses: result.responses.length, latencyUs })}\n`);
