// `cfn coordinate`: the coordinator pod's entrypoint (see coordinator/coordinate.ts).
import { parseArgs } from 'node:util';
import { KubeClient } from '../k8s/client.js';
import { createLogger, resolveLogLevel } from '../observability/logger.js';
import { coordinateSwarm } from '../coordinator/coordinate.js';
import { untilSignal } from './operator-command.js';
import { EXIT, UsageError } from './usage-error.js';
import type { CliIo } from './io.js';

export const COORDINATE_HELP = `Usage: cfn coordinate --swarm NAME --namespace NS --version v1|v2

Runs one Swarm's objective as its coordinator (what the operator's coordinator
pods run) and publishes progress to the Swarm's status. Resumes past every
agent whose final answer is in: status.completedAgents and status.failedIndexes
(an agent is never run again once it completed or failed finally). Exit code 3:
V2 preflight failed (the reason is in the termination message,
/dev/termination-log). On SIGTERM it stops the run, publishes what it
delivered and the agents it cut short (status.interruptedAgents, rerunAgents),
and exits 143.

Environment: KUBECONFIG (else in-cluster), CFN_SHM_PATH, CFN_RESULTS_DIR (the
results volume; each agent's record goes to <ns>/<name>/<uid>/<index>.json as it
arrives), CFN_RESULTS_DRAIN_SECONDS (how long the run's end waits for records
not stored yet; default 60), CFN_MEMORY_DB, CFN_TERMINATION_LOG, CFN_TASKS_DIR (spec.tasksFrom's mounted key),
CFN_S3_CREDENTIALS_DIR (the mounted S3 credentials Secret), LOG_LEVEL, POD_NAME (published as
status.progressPod), CFN_SHARD (the shard to run, default 0: its agent index
range, published into status.shards[CFN_SHARD] when the swarm has several).
`;

export async function coordinateCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      help: { type: 'boolean', short: 'h' },
      swarm: { type: 'string' },
      namespace: { type: 'string' },
      version: { type: 'string' },
      kubeconfig: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.stdout.write(COORDINATE_HELP);
    return EXIT.ok;
  }
  const name = values.swarm ?? io.env.SWARM_NAME;
  const namespace = values.namespace ?? io.env.SWARM_NAMESPACE;
  const version = values.version ?? io.env.COORDINATION_VERSION;
  if (!name) throw new UsageError('--swarm is required');
  if (!namespace) throw new UsageError('--namespace is required');
  if (version !== 'v1' && version !== 'v2') throw new UsageError(`--version: expected v1 or v2, got ${JSON.stringify(version ?? '')}`);
  const drain = io.env.CFN_RESULTS_DRAIN_SECONDS;
  const drainSeconds = drain === undefined || drain === '' ? undefined : Number(drain);
  if (drainSeconds !== undefined && !(Number.isFinite(drainSeconds) && drainSeconds >= 0 && drainSeconds <= 86_400)) {
    throw new UsageError(`CFN_RESULTS_DRAIN_SECONDS: expected seconds from 0 to 86400, got ${JSON.stringify(drain)}`);
  }
  const shardEnv = io.env.CFN_SHARD;
  const shard = shardEnv === undefined || shardEnv === '' ? undefined : Number(shardEnv);
  if (shard !== undefined && !(Number.isSafeInteger(shard) && shard >= 0 && String(shard) === shardEnv)) {
    throw new UsageError(`CFN_SHARD: expected a shard number (0, 1, ...), got ${JSON.stringify(shardEnv)}`);
  }
  const logger = createLogger({ name: 'cfn-coordinator', level: resolveLogLevel(io.env.LOG_LEVEL ?? 'info') });
  return coordinateSwarm({
    client: KubeClient.load(values.kubeconfig ?? io.env.KUBECONFIG),
    namespace,
    name,
    version,
    logger,
    ...(io.env.POD_NAME ? { podName: io.env.POD_NAME } : {}),
    ...(io.env.CFN_SHM_PATH ? { shmPath: io.env.CFN_SHM_PATH } : {}),
    ...(io.env.CFN_RESULTS_DIR ? { resultsDir: io.env.CFN_RESULTS_DIR } : {}),
    ...(drainSeconds !== undefined ? { resultsDrainMs: drainSeconds * 1000 } : {}),
    ...(io.env.CFN_MEMORY_DB ? { memoryPath: io.env.CFN_MEMORY_DB } : {}),
    ...(io.env.CFN_TERMINATION_LOG ? { terminationLog: io.env.CFN_TERMINATION_LOG } : {}),
    ...(io.env.CFN_TASKS_DIR ? { tasksDir: io.env.CFN_TASKS_DIR } : {}),
    ...(io.env.CFN_S3_CREDENTIALS_DIR ? { s3CredentialsDir: io.env.CFN_S3_CREDENTIALS_DIR } : {}),
    ...(io.signals ? { stopSignal: untilSignal() } : {}),
    ...(shard !== undefined ? { shard } : {}),
  });
}
