// `cfn run`: options -> coordinator -> objective -> progress, summary, exit code.
import { ConfigError } from '../config/config-error.js';
import { deliveryFigures, meetsMinDelivery } from '../coordination/delivery.js';
import { checkAgentLimits } from '../config/performance-limits.js';
import type { AgentResponse, CoordinationVersion, ObjectiveSpec, RunStatus } from '../coordination/types.js';
import { toStoredResult } from '../results/stored-result.js';
import { ResultsFile } from './results-file.js';
import type { EventBus } from '../coordination/v1/event-bus.js';
import { InvalidVersionSettingError } from '../coordination/version/decide-version.js';
import { rangeSize } from '../coordination/index-range.js';
import type { Logger } from '../observability/logger.js';
import { obtainCoordinator, RunCoordinatorUnavailableError } from './run-coordinator.js';
import type { ObtainedCoordinator } from './run-coordinator.js';
import type { CliIo } from './io.js';
import { ProgressBar } from './progress.js';
import type { RunOptions } from './run-options.js';
import { failureRows, formatTable, toSummary } from './summary.js';
import type { RunSummary } from './summary.js';
import { PERFORMANCE_LIMITS } from './defaults.js';
import { EXIT } from './usage-error.js';
import { taskEnvOf } from '../tasks/task-list.js';

export function toObjectiveSpec(o: RunOptions): ObjectiveSpec {
  const taskEnv = o.tasks ? taskEnvOf(o.tasks) : undefined;
  return {
    id: o.swarmId,
    description: o.objective,
    agents: o.agents,
    ...(o.tasks ? { tasks: o.tasks.map((t) => t.task) } : {}),
    ...(taskEnv ? { taskEnv } : {}),
    ...(o.shard ? { indexRange: { ...o.indexRange } } : {}),
    agentCommand: o.agentCommand,
    agentTimeoutSeconds: o.agentTimeoutSeconds,
    retries: o.retries,
    ...(o.noRetryExitCodes.length ? { noRetryExitCodes: o.noRetryExitCodes } : {}),
    concurrency: o.concurrency,
    timeoutSeconds: o.timeoutSeconds,
    maxOutputBytes: o.maxOutputBytes,
  };
}

/** The result object when no status exists (no coordinator started, or the engine broke). */
function failedSummary(o: RunOptions, error: string, version: CoordinationVersion, choice: Pick<RunSummary, 'versionReason' | 'fallback'> = {}): RunSummary {
  return {
    objectiveId: o.swarmId,
    status: 'failed',
    agents: { total: rangeSize(o.indexRange), completed: 0, failed: 0 },
    deliveryRate: 0,
    coordinationTime: 0,
    throughputAgentsPerSec: 0,
    version,
    ...choice,
    ...ranOf(o),
    error,
  };
}

/** Which agents ran: the index range, and the shard when --shard chose it. */
function ranOf(o: RunOptions): Pick<RunSummary, 'indexRange' | 'shard'> {
  return { indexRange: { ...o.indexRange }, ...(o.shard ? { shard: { ...o.shard } } : {}) };
}

function emit(io: CliIo, o: RunOptions, summary: RunSummary, failures: readonly AgentResponse[] = []): void {
  if (o.json) io.stdout.write(`${JSON.stringify(summary)}\n`);
  else io.stdout.write(formatTable(summary, failureRows(failures, summary.agents.failed)));
}

/**
 * The run's verdict under --min-delivery: a run whose agents all answered
 * (completed) but completed less than the minimum share is failed; a deadline
 * with enough completed agents stays timeout (and exits 0).
 */
export function judgedStatus(status: RunStatus, minDelivery: number): RunStatus['status'] {
  if (status.status !== 'completed') return status.status;
  return meetsMinDelivery(status.agents.completed, status.agents.total, minDelivery) ? 'completed' : 'failed';
}

/** completed or timeout: judged by --min-delivery on completed agents / total (a deadline with enough completed is acceptable). */
export function exitCodeFor(status: RunStatus, minDelivery: number): number {
  if (status.status === 'stopped') return EXIT.interrupted;
  if (status.status !== 'completed' && status.status !== 'timeout') return EXIT.runFailed;
  return meetsMinDelivery(status.agents.completed, status.agents.total, minDelivery) ? EXIT.ok : EXIT.runFailed;
}

export interface RunHooks {
  /** Observes the run's events, `coordination:fallback` included (tests, embedding). */
  bus?: EventBus;
}

export async function runCommand(o: RunOptions, io: CliIo, logger: Logger, hooks: RunHooks = {}): Promise<number> {
  const spec = toObjectiveSpec(o);
  const limits = PERFORMANCE_LIMITS;
  const verdict = checkAgentLimits(limits, rangeSize(o.indexRange));
  if (!verdict.ok) {
    io.stderr.write(`cfn: ${verdict.reason} (config/performance-limits.json)\n`);
    return EXIT.usage;
  }
  if (verdict.warning) io.stderr.write(`cfn: warning: ${verdict.warning}\n`);
  let resultsFile: ResultsFile | undefined;
  if (o.resultsFile !== undefined) {
    try {
      resultsFile = await ResultsFile.open(o.resultsFile);
    } catch (err) {
      io.stderr.write(`cfn: --results ${o.resultsFile}: ${(err as Error).message}\n`);
      return EXIT.usage;
    }
  }
  let obtained: ObtainedCoordinator;
  try {
    obtained = await obtainCoordinator(o, {
      logger,
      env: io.env,
      ...(hooks.bus ? { bus: hooks.bus } : {}),
      // Shown once, on stderr, whatever stdout carries.
      onUserMessage: (line) => io.stderr.write(`cfn: ${line}\n`),
    });
  } catch (err) {
    await resultsFile?.close();
    const message = (err as Error).message;
    io.stderr.write(`cfn: ${message}\n`);
    if (err instanceof ConfigError || err instanceof InvalidVersionSettingError) return EXIT.usage;
    if (err instanceof RunCoordinatorUnavailableError) {
      if (o.json) emit(io, o, failedSummary(o, message, err.version, { versionReason: err.decision.reason }));
      return EXIT.unavailable;
    }
    if (o.json) emit(io, o, failedSummary(o, message, 'v2'));
    return EXIT.unavailable;
  }
  const { coordinator } = obtained;
  const choice = { versionReason: obtained.decision.reason, ...(obtained.fallback ? { fallback: obtained.fallback } : {}) };

  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    io.stderr.write('\ncfn: interrupted, stopping the swarm\n');
    void coordinator.stop();
  };
  if (io.signals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
  }

  const bar = io.isTTY && !o.json ? new ProgressBar(io.stderr) : undefined;
  const counts = { total: rangeSize(o.indexRange), completed: 0, failed: 0, elapsedMs: 0 };
  const startedAt = Date.now();
  // agent:completed / agent:failed: the event names both coordinators emit.
  const onCompleted = (): void => {
    counts.completed += 1;
    counts.elapsedMs = Date.now() - startedAt;
    bar?.update(counts);
  };
  const onFailed = (): void => {
    counts.failed += 1;
    counts.elapsedMs = Date.now() - startedAt;
    bar?.update(counts);
  };
  // Redraw also while no agent finishes, so elapsed time and rate stay live.
  const ticker = bar
    ? setInterval(() => {
        counts.elapsedMs = Date.now() - startedAt;
        bar.update(counts);
      }, 500)
    : undefined;
  ticker?.unref();
  if (bar) {
    coordinator.on('agent:completed', onCompleted);
    coordinator.on('agent:failed', onFailed);
  }
  // Both versions emit 'response' once per final response, as it arrives.
  const onResponse = (r: AgentResponse): void => resultsFile?.append(toStoredResult(r, coordinator.version));
  coordinator.on('response', onResponse);

  try {
    const result = await coordinator.executeObjective(spec);
    clearInterval(ticker);
    if (bar) {
      counts.elapsedMs = Date.now() - startedAt;
      bar.finish(counts);
    }
    const summary = toSummary({ ...result.status, status: judgedStatus(result.status, o.minDelivery) }, coordinator.version, { ...choice, ...ranOf(o) });
    emit(
      io,
      o,
      summary,
      result.responses.filter((r) => r.status === 'failed'),
    );
    let code = interrupted ? EXIT.interrupted : exitCodeFor(result.status, o.minDelivery);
    if (resultsFile) {
      const file = resultsFile;
      resultsFile = undefined;
      const written = await file.close();
      if (written.error !== undefined) {
        // Results the user asked to keep are missing: the run did not deliver them.
        io.stderr.write(
          `cfn: --results ${file.path}: ${written.failed} of ${written.written + written.failed} results could not be written: ${written.error}\n`,
        );
        if (code === EXIT.ok) code = EXIT.runFailed;
      }
    }
    const failedAgents = result.status.agents.failed;
    if (code === EXIT.ok && failedAgents > 0) {
      // Enough completed, some failed: say so rather than stay silent.
      const first = result.responses.find((r) => r.status === 'failed');
      io.stderr.write(
        `cfn: note: ${failedAgents} of ${result.status.agents.total} agents failed` +
          `${first ? ` (agent ${first.index}: exit ${first.exitCode ?? 'none'}${first.error ? `, ${first.error}` : ''})` : ''}\n`,
      );
    }
    if (code === EXIT.runFailed) {
      const why =
        result.status.status === 'completed' || result.status.status === 'timeout'
          ? `${result.status.status === 'timeout' ? 'deadline passed: ' : ''}${deliveryFigures(result.status.agents)} < --min-delivery ${o.minDelivery}%`
          : `run ${result.status.status}`;
      const firstFailure = result.responses.find((r) => r.status === 'failed');
      io.stderr.write(`cfn: ${why}${firstFailure?.error ? ` (first agent error: ${firstFailure.error})` : ''}\n`);
    }
    return code;
  } catch (err) {
    const message = (err as Error).message;
    io.stderr.write(`cfn: ${message}\n`);
    if (o.json) emit(io, o, failedSummary(o, message, coordinator.version, choice));
    return EXIT.runFailed;
  } finally {
    clearInterval(ticker);
    coordinator.off('agent:completed', onCompleted);
    coordinator.off('agent:failed', onFailed);
    coordinator.off('response', onResponse);
    await resultsFile?.close();
    if (io.signals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
    }
    await coordinator.stop();
  }
}
