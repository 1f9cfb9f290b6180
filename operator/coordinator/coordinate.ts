// What a coordinator pod runs (`cfn coordinate`): read its own Swarm, run the
// objective on the version the operator chose, resume past the agents whose
// final answer an earlier coordinator published (completed or failed), and
// publish progress to the Swarm's status. A shard's coordinator ($CFN_SHARD)
// runs its index range only (swarmShardRanges) and publishes into its own
// status.shards entry.
// A V2 preflight failure exits with EXIT_PREFLIGHT_FAILED and the reason in the
// termination message: the operator's cue to fall back to V1.
// Every final response goes to the results sink as it arrives; an agent counts
// as done in status only once its record is durable, so a coordinator lost at
// any moment leaves each index either stored or run again, never lost.
import { writeFile } from 'node:fs/promises';
import { swarm as swarmSchema, swarmAgents } from '../api/swarm.js';
import { TaskListError, taskEnvOf } from '../tasks/task-list.js';
import type { Task } from '../tasks/task-list.js';
import { INVALID_TASKS_PREFIX } from '../swarm/swarm-tasks.js';
import { loadSwarmTasks } from './load-tasks.js';
import { deliveryFigures } from '../coordination/delivery.js';
import { SwarmCoordinator } from '../coordination/v1/swarm-coordinator.js';
import { BashCoordinator } from '../coordination/v2/bash-coordinator.js';
import { CoordinatorUnavailableError } from '../coordination/v2/engine-preflight.js';
import { SWARM_RESOURCE } from '../api/common.js';
import { resourcePath } from '../k8s/client.js';
import { isRetryable } from '../k8s/errors.js';
import { ResultWriter, notStoredMessage } from '../results/result-writer.js';
import { createSink } from '../results/sink-factory.js';
import type { IndexRange, ResultSink } from '../results/result-sink.js';
import { toStoredResult } from '../results/stored-result.js';
import { EXIT_PREFLIGHT_FAILED, swarmRunId } from '../swarm/coordinator-pod.js';
import { publishIntervalMs, StatusPublisher } from './status-publisher.js';
import { swarmShardRanges } from '../swarm/shards.js';
import { rangeIndexes, shardEntry } from '../swarm/shard-status.js';
import type { AgentResponse, CoordinationVersion, Coordinator, ObjectiveSpec } from '../coordination/types.js';
import type { KubeClient } from '../k8s/client.js';
import type { Logger } from 'pino';

export interface CoordinateOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  version: CoordinationVersion;
  logger: Logger;
  /** This pod's name ($POD_NAME), published with progress as status.progressPod. */
  podName?: string;
  shmPath?: string;
  /** The results volume's mount (a directory sink's root; default /results). */
  resultsDir?: string;
  /** How long the run's end waits for records still being stored (default RESULTS_DRAIN_MS). */
  resultsDrainMs?: number;
  /** Where the S3 credentials Secret is mounted (default S3_CREDENTIALS_MOUNT_PATH). */
  s3CredentialsDir?: string;
  memoryPath?: string;
  terminationLog?: string;
  bashDir?: string;
  publishIntervalMs?: number;
  /** Where spec.tasksFrom's key is mounted (default TASKS_MOUNT_PATH). */
  tasksDir?: string;
  /** Resolves when the process is asked to stop (SIGTERM): the run is stopped and progress kept. */
  stopSignal?: Promise<unknown>;
  /** The shard this coordinator runs ($CFN_SHARD; default 0). */
  shard?: number;
}

/**
 * Reads the Swarm through an empty merge patch of its status: the answer is
 * the whole Swarm, unchanged (no write reaches etcd), and patching its own
 * Swarm's status is the one verb a coordinator holds. A write is also what
 * the shared identity's admission policy checks; it never sees reads
 * (coordinator-rbac.ts). The pod may start a moment before its RoleBinding
 * lands: retry what can pass soon.
 */
async function readOwnSwarm(client: KubeClient, path: string, deadlineMs = 15_000): Promise<unknown> {
  const end = Date.now() + deadlineMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await client.mergePatch(`${path}/status`, {});
    } catch (e) {
      if (!isRetryable(e) || Date.now() + delay > end) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** The run's end waits this long for a slow or failing sink, then ends failed naming what was not stored. */
export const RESULTS_DRAIN_MS = 60_000;
/** A stop waits less: the pod's 30 s grace period also covers the last status write. */
export const STOP_DRAIN_MS = 15_000;

/** The sink's records already stored by an earlier coordinator of the run (counted in status.results). */
async function inventoryOf(sink: ResultSink, log: Logger, range: IndexRange): Promise<Array<{ index: number; bytes: number }> | undefined> {
  if (!sink.inventory) return undefined;
  try {
    return await sink.inventory(range);
  } catch (err) {
    log.warn({ err: String(err) }, 'cannot list the results stored so far; status.results counts from the previous status');
    return undefined;
  }
}

export async function coordinateSwarm(o: CoordinateOptions): Promise<number> {
  const path = resourcePath({ ...SWARM_RESOURCE, namespace: o.namespace, name: o.name });
  const swarm = swarmSchema.parse(await readOwnSwarm(o.client, path));
  const spec = swarm.spec;
  const shards = swarmShardRanges(swarm);
  const range = shards[o.shard ?? 0];
  if (!range) throw new Error(`shard ${o.shard}: the swarm has ${shards.length} shard${shards.length === 1 ? '' : 's'}`);
  const sharded = shards.length > 1;
  const log = o.logger.child({ namespace: o.namespace, name: o.name, version: o.version, ...(sharded ? { shard: range.shard } : {}) });
  // A sharded swarm's shard resumes past its own entry's progress; a single shard past the top-level fields.
  const previous = sharded ? shardEntry(swarm.status, range.shard) : swarm.status;
  // Set once the sink exists; until then status.results is not published.
  const results: { writer?: ResultWriter; base: { stored: number; bytes: number } } = { base: { stored: 0, bytes: 0 } };
  const publisher = new StatusPublisher({
    client: o.client,
    namespace: o.namespace,
    name: o.name,
    total: range.end - range.start,
    ...(o.podName ? { pod: o.podName } : {}),
    ...(previous ? { previous } : {}),
    ...(sharded ? { shard: { index: range.shard, indexes: rangeIndexes(range) } } : {}),
    intervalMs: o.publishIntervalMs ?? publishIntervalMs(shards.length),
    onError: (err) => log.warn({ err: String(err) }, 'status publish failed; retrying with the next update'),
    results: () => {
      if (!results.writer) return undefined;
      const st = results.writer.stats();
      return {
        type: spec.results.type,
        location: results.writer.location,
        stored: results.base.stored + st.stored,
        bytes: results.base.bytes + st.bytes,
        pending: st.pending,
        ...(st.lastError !== undefined ? { lastError: st.lastError } : {}),
      };
    },
  });

  // A sink that cannot exist (a bad spec.results) is the user's to fix, like bad tasks: failed, never a fallback.
  let sink: ResultSink;
  try {
    sink = await createSink(
      spec.results,
      { namespace: o.namespace, name: o.name, uid: swarmRunId(swarm) },
      {
        ...(o.resultsDir ? { resultsDir: o.resultsDir } : {}),
        ...(o.podName ? { pod: o.podName } : {}),
        ...(o.s3CredentialsDir ? { s3CredentialsDir: o.s3CredentialsDir } : {}),
        ...(sharded ? { shard: range.shard } : {}),
      },
    );
  } catch (err) {
    const reason = `results: ${err instanceof Error ? err.message : String(err)}`;
    log.error({ reason }, 'no results sink');
    await publisher.flush({ status: 'failed', message: reason });
    publisher.stop();
    return 0;
  }
  // Only the shard's own records: other shards may share the sink.
  const known = await inventoryOf(sink, log, range);
  // Without an inventory the earlier coordinators' count carries over (an index they stored and this one stores again counts twice).
  if (!known && previous?.results) results.base = { stored: previous.results.stored, bytes: previous.results.bytes };
  // An agent is done in status once its record is durable: a replacement reruns whatever was not.
  const resultsWriter = new ResultWriter(sink, { ...(known ? { known } : {}), onStored: (r) => publisher.onResponse(r), onChange: () => publisher.touch() });
  results.writer = resultsWriter;

  // Bad tasks are the user's error, not the engine's: the run ends failed with
  // the problem in status.result (the operator's Failed condition), never a fallback.
  let tasks: Task[] | undefined;
  try {
    tasks = await loadSwarmTasks(spec, o.tasksDir);
  } catch (err) {
    if (!(err instanceof TaskListError)) throw err;
    log.error({ reason: err.message }, 'invalid tasks');
    await publisher.flush({ status: 'failed', message: `${INVALID_TASKS_PREFIX}${err.message}` });
    publisher.stop();
    return 0;
  }

  const coordinator: Coordinator =
    o.version === 'v2'
      ? new BashCoordinator({ logger: log, ...(o.shmPath ? { shmPath: o.shmPath } : {}), ...(o.bashDir ? { bashDir: o.bashDir } : {}) })
      : new SwarmCoordinator({ ...(o.memoryPath ? { memoryPath: o.memoryPath } : {}), maxAgents: 10_000 });
  try {
    await coordinator.start();
  } catch (err) {
    const reason = err instanceof CoordinatorUnavailableError ? err.reason : err instanceof Error ? err.message : String(err);
    await writeFile(o.terminationLog ?? '/dev/termination-log', reason).catch(() => undefined);
    log.error({ reason }, `${o.version} coordinator cannot start`);
    await coordinator.stop().catch(() => undefined);
    return o.version === 'v2' ? EXIT_PREFLIGHT_FAILED : 1;
  }
  // Preflight passed: say so at once (status.progressPod), so the operator
  // counts this pod as alive however slow its readiness probe is on a busy node.
  await publisher.flush().catch((err: unknown) => log.warn({ err: String(err) }, 'status publish failed; retrying with the next update'));

  // Both versions emit 'response' once per final response.
  const put = new Set<number>();
  const onResponse = (r: AgentResponse) => {
    // Another shard's agent (an engine that ran past the range): not this shard's to store or count.
    if (r.index < range.start || r.index >= range.end) return;
    put.add(r.index);
    resultsWriter.put(toStoredResult(r, o.version, o.podName));
  };
  coordinator.on('response', onResponse);
  void o.stopSignal?.then(() => coordinator.stop().catch(() => undefined));

  const taskEnv = tasks ? taskEnvOf(tasks) : undefined;
  const objective: ObjectiveSpec = {
    id: swarmRunId(swarm),
    description: spec.objective,
    agents: swarmAgents(spec),
    // A single shard runs every index (the engines' default).
    ...(sharded ? { indexRange: { start: range.start, end: range.end } } : {}),
    ...(tasks ? { tasks: tasks.map((t) => t.task) } : {}),
    ...(taskEnv ? { taskEnv } : {}),
    agentCommand: [...spec.agent.command, ...(spec.agent.args ?? [])],
    agentTimeoutSeconds: spec.agent.timeoutSeconds,
    retries: spec.agent.retries,
    concurrency: spec.agent.concurrency,
    timeoutSeconds: spec.timeoutSeconds,
    maxOutputBytes: spec.agent.maxOutputBytes,
    completedIndexes: publisher.completedIndexes(),
    failedIndexes: publisher.failedIndexes(),
    ...(spec.agent.noRetryExitCodes?.length ? { noRetryExitCodes: spec.agent.noRetryExitCodes } : {}),
  };
  log.info(
    {
      agents: range.end - range.start,
      indexes: rangeIndexes(range),
      tasks: tasks?.length ?? 0,
      resumedPastCompleted: publisher.completedIndexes().length,
      resumedPastFailed: publisher.failedIndexes().length,
    },
    'coordinating',
  );
  try {
    const result = await coordinator.executeObjective(objective);
    for (const r of result.responses) if (!put.has(r.index)) onResponse(r);
    // Stopped mid-run: the agents it cut short run again under the next coordinator.
    if (result.interruptedIndexes?.length) publisher.onInterrupted(result.interruptedIndexes);
    const state = result.status.status;
    let final = state === 'completed' || state === 'failed' || state === 'timeout' || state === 'stopped' ? state : 'failed';
    let message = deliveryFigures(result.status.agents);
    if (!(await resultsWriter.drain(final === 'stopped' ? STOP_DRAIN_MS : (o.resultsDrainMs ?? RESULTS_DRAIN_MS)))) {
      const unstored = resultsWriter.pendingIndexes();
      const { lastError } = resultsWriter.stats();
      log.error({ unstored: unstored.length, lastError }, 'results could not be stored in time');
      if (final === 'stopped') {
        // Not done in status: the next coordinator runs them again.
        publisher.onInterrupted(unstored);
      } else {
        // What was stored stays stored; the run ends failed naming the rest (they are not counted as done).
        final = 'failed';
        message = notStoredMessage(unstored.length, lastError);
      }
    }
    await publisher.flush({ status: final, message });
    log.info({ status: final, deliveryRate: result.status.deliveryRate, results: resultsWriter.stats() }, 'objective finished');
    if (final !== 'stopped') return 0;
    // The pod's termination message, and so the reason the operator reports.
    const { completed, failed, total } = result.status.agents;
    const cut = result.interruptedIndexes?.length ?? 0;
    await writeFile(o.terminationLog ?? '/dev/termination-log', `stopped mid-run: ${completed + failed}/${total} agents delivered, ${cut} interrupted`).catch(
      () => undefined,
    );
    return 143;
  } catch (err) {
    // Progress so far stays published: a replacement resumes from it.
    await resultsWriter.drain(STOP_DRAIN_MS);
    await publisher.flush().catch(() => undefined);
    throw err;
  } finally {
    publisher.stop();
    resultsWriter.close();
    sink.close?.();
    coordinator.off('response', onResponse);
    await coordinator.stop();
  }
}
