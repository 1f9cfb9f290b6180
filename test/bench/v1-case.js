// One V1 benchmark case in its own process (so the parent measures this process
// tree's RSS alone): runs the objective through the built SwarmCoordinator with
// a fresh SQLite memory in a temporary directory, prints one JSON line.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// node:sqlite's ExperimentalWarning says nothing about this case.
process.removeAllListeners('warning');

const [, , distRoot, caseJson] = process.argv;
const c = JSON.parse(caseJson);
const { SwarmCoordinator } = await import(pathToFileURL(join(distRoot, 'operator/coordination/v1/swarm-coordinator.js')).href);

const dir = await mkdtemp(join(tmpdir(), 'cfn-bench-v1-'));
try {
  const coordinator = new SwarmCoordinator({ memoryPath: join(dir, 'memory.sqlite') });
  const t0 = performance.now();
  await coordinator.start();
  const startMs = performance.now() - t0;
  const t1 = performance.now();
  let result;
  let wallMs;
  try {
    result = await coordinator.executeObjective({
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
    // Like V2's wall: the objective alone, start and stop outside it.
    wallMs = performance.now() - t1;
  } finally {
    await coordinator.stop();
  }
  process.stdout.write(`${JSON.stringify({ wallMs, startMs, status: result.status, responses: result.responses.length })}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
