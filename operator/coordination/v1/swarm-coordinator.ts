// The V1 coordinator: the TypeScript fallback. Agents are real processes run
// with the same contract as V2 (agent-process.ts), scheduled by the
// RetryingTaskRunner, and every response is committed to SQLite as it arrives,
// so a coordinator killed mid-run resumes without re-running an agent whose
// final response (completed or failed) is in.
import { EventEmitter } from 'node:events';
import { agentResponseOf, agentStateOf, listAgentsOf } from '../agent-view.js';
import { runStatus } from '../delivery.js';
import { rangeSize, runRange } from '../index-range.js';
import type { AgentView } from '../agent-view.js';
import type {
  AgentInfo,
  AgentResponse,
  AgentState,
  Capabilities,
  HealthReport,
  Coordinator,
  ObjectiveResult,
  ObjectiveSpec,
  SwarmRunState,
  RunStatus,
} from '../types.js';
import { RetryingTaskRunner } from './retrying-task-runner.js';
import type { ScheduledTask, TaskResult } from './retrying-task-runner.js';
import { AgentLauncher } from './agent-process.js';
import type { AgentAttemptResult } from './agent-process.js';
import { EventBus } from './event-bus.js';
import type { SwarmEventName, SwarmEvents } from './event-bus.js';
import { checkpointKey, defaultMemoryPath, ResponseCheckpointStore } from './response-checkpoint-store.js';
import { objectiveIdentity, parseObjectiveSpec } from './objective-spec-schema.js';
import { isOwnerAlive, ownerToken } from './process-owner.js';
import { killStrayAgents } from '../stray-agents.js';
import { SwarmMonitor } from './swarm-monitor.js';
import type { MonitorSnapshot } from './swarm-monitor.js';

export interface SwarmCoordinatorOptions {
  /** SQLite file; default `.cfn/memory.sqlite` under the working directory (response-checkpoint-store.ts). */
  memoryPath?: string;
  /** Shared event bus (the factory passes one); default: a private one. */
  bus?: EventBus;
  /** Between TERM and KILL of a timed-out or stopped agent (default 1000 ms). */
  killGraceMs?: number;
  /** First retry delay (default 100 ms, doubling each retry, like V2). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Largest objective accepted (default 10000, like `cfn run`'s maximum, so a fallback can take any swarm). */
  maxAgents?: number;
  /** Extra environment for agents, under the contract variables. */
  agentEnv?: Readonly<Record<string, string>>;
}

interface ActiveRun {
  spec: ObjectiveSpec;
  /** Where the run's objective and responses live in the checkpoint store (checkpointKey). */
  key: string;
  scheduler: RetryingTaskRunner<AgentAttemptResult>;
  /** One launcher session for every attempt of the run. */
  launcher: AgentLauncher;
  monitor: SwarmMonitor;
  startedAt: number;
  lastResponseAt: number | undefined;
  running: Set<number>;
  /** Final responses (completed or failed), stored or of this run. */
  finals: Map<number, AgentResponse>;
  /** completedIndexes without a stored response: counted as completed, not re-run. */
  countedCompleted: Set<number>;
  /** failedIndexes without a stored response: counted as failed, not re-run. */
  countedFailed: Set<number>;
  completedThisRun: number;
  noRetryExitCodes: ReadonlySet<number>;
  stopRequested: boolean;
  /** Agents running when stop() came. */
  interrupted: Set<number>;
  timedOut: boolean;
  done: Promise<unknown>;
}

export class CoordinatorNotStartedError extends Error {
  constructor() {
    super('V1 coordinator is not started (call start() first)');
    this.name = 'CoordinatorNotStartedError';
  }
}

const agentIndex = (taskId: string): number => Number(taskId.slice('agent-'.length));

export class SwarmCoordinator extends EventEmitter implements Coordinator {
  readonly version = 'v1' as const;
  readonly bus: EventBus;
  readonly memory: ResponseCheckpointStore;
  private started = false;
  private readonly active = new Map<string, ActiveRun>();
  private readonly lastMonitors = new Map<string, SwarmMonitor>();
  /** The checkpoint key of the latest run of each objective id in this process (a range of it, or all of it). */
  private readonly lastKeys = new Map<string, string>();

  constructor(private readonly options: SwarmCoordinatorOptions = {}) {
    super();
    this.bus = options.bus ?? new EventBus();
    this.memory = new ResponseCheckpointStore(options.memoryPath ?? defaultMemoryPath());
  }

  capabilities(): Capabilities {
    return { version: 'v1', maxAgents: this.options.maxAgents ?? 10_000, persistentResume: true };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.memory.open();
    this.started = true;
  }

  /** Cancels running objectives (agents get TERM, then KILL), waits for them, closes the database. */
  async stop(): Promise<void> {
    const runs = [...this.active.values()];
    for (const run of runs) {
      run.stopRequested = true;
      for (const i of run.running) run.interrupted.add(i);
      run.scheduler.cancel('coordinator stopped');
    }
    await Promise.allSettled(runs.map((r) => r.done));
    // An exited child's process handle is released in the loop's close phase,
    // which runs after this iteration's check phase: wait two check phases.
    for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
    this.memory.close();
    this.started = false;
  }

  async healthCheck(): Promise<HealthReport> {
    const checks: HealthReport['checks'] = {
      started: { ok: this.started, detail: this.started ? 'started' : 'not started' },
    };
    if (this.memory.isOpen) {
      try {
        this.memory.kvSet('health', 'last-check', new Date().toISOString());
        checks.memory = { ok: true, detail: `${this.memory.file} writable` };
      } catch (err) {
        checks.memory = { ok: false, detail: `${this.memory.file}: ${(err as Error).message}` };
      }
    } else {
      checks.memory = { ok: false, detail: `${this.memory.file} not open` };
    }
    const failing = Object.values(checks).find((c) => !c.ok);
    return failing ? { healthy: false, reason: failing.detail, checks } : { healthy: true, checks };
  }

  /** Checkpoints (checkpointKey: an objective id, or `<id>@<start>-<end>` for a range) that did not complete: what resumeObjective can pick up. */
  listResumableObjectives(): string[] {
    this.assertStarted();
    const running = new Set([...this.active.values()].map((r) => r.key));
    return this.memory.listObjectiveIds().filter((key) => this.memory.getObjective(key)?.status !== 'completed' && !running.has(key));
  }

  /** Runs a stored objective (a listResumableObjectives entry) again; agents whose final response is in are not re-run. */
  async resumeObjective(id: string): Promise<ObjectiveResult> {
    this.assertStarted();
    const stored = this.memory.getObjective(id);
    if (!stored) throw new Error(`objective ${JSON.stringify(id)} not found in ${this.memory.file}`);
    return this.executeObjective(stored.spec);
  }

  async executeObjective(input: ObjectiveSpec): Promise<ObjectiveResult> {
    this.assertStarted();
    const requested = parseObjectiveSpec(input);
    const maxAgents = this.capabilities().maxAgents;
    if (requested.agents > maxAgents) throw new Error(`${requested.agents} agents exceed the V1 coordinator's maximum of ${maxAgents}`);
    if (this.active.has(requested.id)) throw new Error(`objective ${requested.id} is already running`);
    // Each index range of an objective is its own checkpoint: shards sharing one store never share status, owner or counts.
    const key = checkpointKey(requested);
    const existing = this.memory.getObjective(key);
    if (existing && objectiveIdentity(existing.spec) !== objectiveIdentity(requested)) {
      throw new Error(`objective ${requested.id} already exists in ${this.memory.file} with a different description, agents, tasks or agentCommand`);
    }
    let reaped: number[] = [];
    if (existing?.owner && existing.owner !== ownerToken()) {
      if (isOwnerAlive(existing.owner)) {
        throw new Error(`objective ${requested.id} is being run by another coordinator (process ${existing.owner.split(':')[0]}) on ${this.memory.file}`);
      }
      // Its coordinator died mid-run: whatever agents it left are orphans.
      reaped = await killStrayAgents(requested);
    }
    const { spec } = this.memory.beginObjective(requested, ownerToken());
    const range = runRange(spec);

    const finals = new Map(this.memory.listResponses(key).map((r) => [r.index, r] as const));
    const countedCompleted = new Set((spec.completedIndexes ?? []).filter((i) => !finals.has(i)));
    const countedFailed = new Set((spec.failedIndexes ?? []).filter((i) => !finals.has(i) && !countedCompleted.has(i)));
    const monitor = new SwarmMonitor();
    const run: ActiveRun = {
      spec,
      key,
      scheduler: undefined as unknown as RetryingTaskRunner<AgentAttemptResult>,
      launcher: new AgentLauncher({
        argv: spec.agentCommand,
        objectiveId: spec.id,
        objective: spec.description,
        agentsTotal: spec.agents,
        maxOutputBytes: spec.maxOutputBytes,
        killGraceMs: this.options.killGraceMs,
        env: this.options.agentEnv,
      }),
      monitor,
      startedAt: Date.now(),
      lastResponseAt: undefined,
      running: new Set(),
      finals,
      countedCompleted,
      countedFailed,
      completedThisRun: 0,
      noRetryExitCodes: new Set(spec.noRetryExitCodes ?? []),
      stopRequested: false,
      interrupted: new Set(),
      timedOut: false,
      done: Promise.resolve(),
    };
    run.scheduler = this.makeScheduler(run);
    this.active.set(spec.id, run);
    this.lastMonitors.set(spec.id, monitor);
    this.lastKeys.set(spec.id, key);

    const tasks: ScheduledTask<AgentAttemptResult>[] = [];
    for (let i = range.start; i < range.end; i++) {
      if (!finals.has(i) && !countedCompleted.has(i) && !countedFailed.has(i)) tasks.push(this.agentTask(run, i));
    }
    this.publish('objective:started', {
      objectiveId: spec.id,
      agents: rangeSize(range),
      alreadyFinal: rangeSize(range) - tasks.length,
      strayAgentsKilled: reaped.length,
      timestamp: Date.now(),
    });

    const deadline = setTimeout(() => {
      run.timedOut = true;
      run.scheduler.cancel(`objective deadline of ${spec.timeoutSeconds}s passed`);
    }, spec.timeoutSeconds * 1000);
    const execution = run.scheduler.run(tasks);
    run.done = execution.catch(() => undefined);
    let runState: SwarmRunState;
    try {
      await execution;
      runState = this.finalState(run);
    } catch (err) {
      this.finish(run, 'failed');
      throw err;
    } finally {
      clearTimeout(deadline);
      await run.launcher.close();
      // What an agent left running in the background (also past a setsid) ends with the run, as in V2.
      await killStrayAgents(spec);
    }
    const status = this.finish(run, runState);
    const responses = [...run.finals.values()].sort((a, b) => a.index - b.index);
    const interrupted = [...run.interrupted].filter((i) => !run.finals.has(i)).sort((a, b) => a - b);
    return { status, responses, ...(interrupted.length ? { interruptedIndexes: interrupted } : {}) };
  }

  async getSwarmStatus(objectiveId: string): Promise<RunStatus | undefined> {
    const run = this.active.get(objectiveId);
    if (run) return this.liveStatus(run, 'running');
    if (!this.memory.isOpen) return undefined;
    const key = this.storedKey(objectiveId);
    const stored = this.memory.getObjective(key);
    if (!stored) return undefined;
    const counts = this.memory.countResponses(key);
    const unstored = (indexes: readonly number[] | undefined) => (indexes ?? []).filter((i) => this.memory.getResponse(key, i) === undefined).length;
    const completed = counts.completed + unstored(stored.spec.completedIndexes);
    const failed = counts.failed + unstored(stored.spec.failedIndexes);
    const coordinationTime = stored.startedAt !== null ? (stored.finishedAt ?? Date.now()) - stored.startedAt : 0;
    return runStatus(
      objectiveId,
      stored.status,
      { total: rangeSize(runRange(stored.spec)), completed, failed, completedThisRun: counts.completed },
      coordinationTime,
    );
  }

  async getAgentState(objectiveId: string, index: number): Promise<AgentState | undefined> {
    return agentStateOf(this.agentView(objectiveId), index);
  }

  async listAgents(objectiveId: string): Promise<AgentInfo[] | undefined> {
    return listAgentsOf(this.agentView(objectiveId));
  }

  async getAgentResponse(objectiveId: string, index: number): Promise<AgentResponse | undefined> {
    return agentResponseOf(this.agentView(objectiveId), index);
  }

  /** The objective's agents: the live run's, else the stored objective's. */
  private agentView(objectiveId: string): AgentView | undefined {
    const run = this.active.get(objectiveId);
    if (run) {
      return {
        range: runRange(run.spec),
        response: (i) => run.finals.get(i),
        state: (i) =>
          run.finals.get(i)?.status ??
          (run.countedCompleted.has(i) ? 'completed' : run.countedFailed.has(i) ? 'failed' : run.running.has(i) ? 'running' : 'pending'),
      };
    }
    if (!this.memory.isOpen) return undefined;
    const key = this.storedKey(objectiveId);
    const stored = this.memory.getObjective(key);
    if (!stored) return undefined;
    const counted = new Set(stored.spec.completedIndexes ?? []);
    const countedFailed = new Set(stored.spec.failedIndexes ?? []);
    return {
      range: runRange(stored.spec),
      response: (i) => this.memory.getResponse(key, i),
      state: (i) => this.memory.getResponse(key, i)?.status ?? (counted.has(i) ? 'completed' : countedFailed.has(i) ? 'failed' : 'pending'),
    };
  }

  /** Where an objective id's checkpoint is: its latest run's in this process (a range), else the whole objective's. */
  private storedKey(objectiveId: string): string {
    return this.lastKeys.get(objectiveId) ?? objectiveId;
  }

  /** Counters and durations of the latest run of an objective in this process. */
  getMetrics(objectiveId: string): MonitorSnapshot | undefined {
    return this.lastMonitors.get(objectiveId)?.snapshot();
  }

  private assertStarted(): void {
    if (!this.started) throw new CoordinatorNotStartedError();
  }

  private publish<K extends SwarmEventName>(event: K, payload: SwarmEvents[K]): void {
    this.bus.publish(event, payload);
    this.emit(event, payload);
  }

  private makeScheduler(run: ActiveRun): RetryingTaskRunner<AgentAttemptResult> {
    const { spec, monitor } = run;
    return new RetryingTaskRunner<AgentAttemptResult>(
      {
        concurrency: spec.concurrency,
        timeoutMs: spec.agentTimeoutSeconds * 1000,
        retries: spec.retries,
        backoffBaseMs: this.options.backoffBaseMs ?? 100,
        backoffMaxMs: this.options.backoffMaxMs ?? 10_000,
      },
      {
        onAttemptStart: (id, attempt) => {
          const index = agentIndex(id);
          if (attempt === 1) monitor.agentStarted();
          run.running.add(index);
          this.publish('agent:started', { objectiveId: spec.id, agentId: id, index, attempt, timestamp: Date.now() });
        },
        onRetry: (id, nextAttempt, delayMs, error, timedOut) => {
          monitor.agentRetried(timedOut);
          this.publish('agent:retry', {
            objectiveId: spec.id,
            agentId: id,
            index: agentIndex(id),
            attempt: nextAttempt,
            delayMs,
            error,
            timestamp: Date.now(),
          });
        },
        onTaskDone: (result) => this.onAgentDone(run, result),
      },
    );
  }

  private agentTask(run: ActiveRun, index: number): ScheduledTask<AgentAttemptResult> {
    const { spec } = run;
    return {
      id: `agent-${index}`,
      run: async ({ attempt, signal }) => {
        const r = await run.launcher.attempt({ agentIndex: index, task: spec.tasks?.[index] ?? spec.description, attempt, signal, env: spec.taskEnv?.[index] });
        if (r.ok) return { ok: true, value: r };
        // An exit code the spec says never to retry: this attempt is final.
        const final = r.exitCode !== null && run.noRetryExitCodes.has(r.exitCode);
        return { ok: false, value: r, error: r.error ?? 'failed', ...(final ? { final } : {}) };
      },
    };
  }

  private onAgentDone(run: ActiveRun, result: TaskResult<AgentAttemptResult>): void {
    const index = agentIndex(result.id);
    run.running.delete(index);
    // Cancelled (stop, deadline) means no final answer: a resume runs it again.
    if (result.status !== 'completed' && result.status !== 'failed') return;
    const v = result.value;
    const ok = result.status === 'completed';
    const response: AgentResponse = {
      agentId: result.id,
      index,
      status: ok ? 'completed' : 'failed',
      exitCode: v?.exitCode ?? null,
      attempts: result.attempts,
      durationMs: Math.round(result.durationMs),
      output: v?.output ?? '',
      outputBytes: v?.outputBytes ?? 0,
      outputTruncated: v?.outputTruncated ?? false,
      error: ok ? null : (v?.error ?? result.error ?? 'failed'),
    };
    // Committed before anyone hears of it: a crash after this line loses nothing.
    if (!this.memory.recordResponse(run.key, response)) return;
    run.finals.set(index, response);
    if (ok) run.completedThisRun += 1;
    run.lastResponseAt = Date.now();
    run.monitor.agentFinished(ok, response.durationMs);
    if (v?.aborted) run.monitor.agentTimedOut();
    this.publish(ok ? 'agent:completed' : 'agent:failed', { objectiveId: run.spec.id, response, timestamp: Date.now() });
    // The two events V2 also emits (types.ts CoordinatorEvents); status only when heard (it counts all responses).
    this.emit('response', response, run.spec.id);
    if (this.listenerCount('status') > 0) this.emit('status', this.liveStatus(run, 'running'));
  }

  private finalState(run: ActiveRun): SwarmRunState {
    if (run.finals.size + run.countedCompleted.size + run.countedFailed.size >= rangeSize(runRange(run.spec))) return 'completed';
    if (run.stopRequested) return 'stopped';
    if (run.timedOut) return 'timeout';
    return 'failed';
  }

  private finish(run: ActiveRun, state: SwarmRunState): RunStatus {
    this.active.delete(run.spec.id);
    const status = this.liveStatus(run, state);
    if (this.memory.isOpen) this.memory.setObjectiveStatus(run.key, state);
    this.emit('status', status);
    this.publish('objective:completed', { objectiveId: run.spec.id, status, timestamp: Date.now() });
    return status;
  }

  private liveStatus(run: ActiveRun, state: SwarmRunState): RunStatus {
    let completed = run.countedCompleted.size;
    let failed = run.countedFailed.size;
    for (const r of run.finals.values()) {
      if (r.status === 'completed') completed += 1;
      else failed += 1;
    }
    const coordinationTime = (run.lastResponseAt ?? Date.now()) - run.startedAt;
    return runStatus(run.spec.id, state, { total: rangeSize(runRange(run.spec)), completed, failed, completedThisRun: run.completedThisRun }, coordinationTime);
  }
}
