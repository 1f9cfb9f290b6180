// V2: drives the bash engine in bash/ (docs/v2-engine.md). TypeScript writes the
// objective and tasks into the swarm root, runs `coordinator-cli.sh run`, collects
// the responses and the final status.json, then removes the root. Preflight,
// process control and the run's result live in engine-preflight.ts,
// engine-process.ts and engine-result.ts.
import { EventEmitter } from 'node:events';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { agentResponseOf, agentStateOf, listAgentsOf } from '../agent-view.js';
import type { AgentView } from '../agent-view.js';
import type { AgentInfo, AgentResponse, AgentState, Capabilities, HealthReport, Coordinator, ObjectiveResult, ObjectiveSpec, RunStatus } from '../types.js';
import type { Logger } from '../../observability/logger.js';
import { createLogger } from '../../observability/logger.js';
import { findPackageRoot } from '../../util/package-root.js';
import { rangeSize, runRange } from '../index-range.js';
import type { IndexRange } from '../index-range.js';
import { writeObjective } from './message-bridge.js';
import { ResultCollector } from './result-collector.js';
import type { QuarantineEvent } from './result-collector.js';
import { validateSpec } from './spec.js';
import { CoordinatorUnavailableError, EnginePreflight, locateEngine } from './engine-preflight.js';
import type { EngineLocation } from './engine-preflight.js';
import { EngineProcess, engineArgs, killStrays, lastLine } from './engine-process.js';
import { EngineError, interruptedAgents, runResult, statusFromResponses, toRunStatus } from './engine-result.js';

export const DEFAULT_SHM_PATH = '/dev/shm/cfn';

export interface BashCoordinatorOptions {
  /** Directory holding the engine scripts; default `<package root>/bash`. */
  bashDir?: string;
  /** The bash binary: a path, or a name looked up on the PATH below; default `bash`. */
  bashPath?: string;
  /** Environment for the engine (default: this process's); its PATH is used to find bash too. */
  env?: NodeJS.ProcessEnv;
  /** tmpfs directory holding swarm roots; default `$CFN_SHM_PATH` or /dev/shm/cfn. */
  shmPath?: string;
  /** Force the bus wake-up mode (CFN_BUS_MODE). */
  busMode?: 'poll' | 'inotify' | 'auto';
  /** How long stop() waits after TERM before KILL. */
  stopGraceMs?: number;
  logger?: Logger;
  /**
   * Called with the swarm root after the engine finished and before the root is
   * removed: for harvesting metrics (the benchmark reads metrics/latency.us).
   */
  beforeCleanup?: (root: string, spec: ObjectiveSpec) => Promise<void>;
}

/** Events; the `objective:*` and `agent:*` ones have the same names and payloads as V1's. */
export interface BashCoordinatorEvents {
  response: [AgentResponse, string];
  status: [RunStatus];
  quarantine: [QuarantineEvent, string];
  'objective:started': [{ objectiveId: string; agents: number; alreadyFinal: number; strayAgentsKilled: number; timestamp: number }];
  'agent:completed': [{ objectiveId: string; response: AgentResponse; timestamp: number }];
  'agent:failed': [{ objectiveId: string; response: AgentResponse; timestamp: number }];
  'objective:completed': [{ objectiveId: string; status: RunStatus; timestamp: number }];
}

interface ActiveRun {
  spec: ObjectiveSpec;
  root: string;
  engine: EngineProcess | undefined;
  collector: ResultCollector;
  startedAt: number;
  stopping: boolean;
  /** Resolves once executeObjective has cleaned up (root removed). */
  done: Promise<void>;
  markDone: () => void;
}

export class BashCoordinator extends EventEmitter<BashCoordinatorEvents> implements Coordinator {
  readonly version = 'v2' as const;
  readonly bashDir: string;
  readonly shmPath: string;
  private readonly location: EngineLocation;
  private readonly stopGraceMs: number;
  private readonly log: Logger;
  private readonly beforeCleanup: BashCoordinatorOptions['beforeCleanup'];
  /** Preflights (own process groups): stop() cancels them, so a start abandoned by a timeout leaves no process. */
  private readonly preflight: EnginePreflight;
  private bashBinary: string | undefined;
  private readonly runs = new Map<string, ActiveRun>();
  /** Finished runs by objective id, with the index range each ran. */
  private readonly finished = new Map<string, { result: ObjectiveResult; range: IndexRange }>();

  constructor(options: BashCoordinatorOptions = {}) {
    super();
    this.bashDir = options.bashDir ?? join(findPackageRoot(import.meta.url), 'bash');
    const env = { ...(options.env ?? process.env) };
    this.shmPath = options.shmPath ?? env.CFN_SHM_PATH ?? DEFAULT_SHM_PATH;
    env.CFN_SHM_PATH = this.shmPath;
    if (options.busMode) env.CFN_BUS_MODE = options.busMode;
    this.location = { bashName: options.bashPath ?? 'bash', bashDir: this.bashDir, env };
    this.preflight = new EnginePreflight({ ...this.location, shmPath: this.shmPath });
    this.stopGraceMs = options.stopGraceMs ?? 5000;
    this.log = options.logger ?? createLogger({ name: 'cfn-v2' });
    this.beforeCleanup = options.beforeCleanup;
  }

  capabilities(): Capabilities {
    return { version: 'v2', maxAgents: 100_000, persistentResume: false };
  }

  async start(): Promise<void> {
    const report = await this.preflight.run();
    if (!report.healthy) throw new CoordinatorUnavailableError(report.reason ?? 'preflight failed');
    this.bashBinary = await locateEngine(this.location);
    this.log.debug({ bash: this.bashBinary, bashDir: this.bashDir, shmPath: this.shmPath, launcher: report.checks.launcher?.detail }, 'v2 coordinator ready');
  }

  async healthCheck(): Promise<HealthReport> {
    return this.preflight.run();
  }

  async executeObjective(input: ObjectiveSpec): Promise<ObjectiveResult> {
    const spec = validateSpec(input);
    const bash = this.bashBinary;
    if (!bash) throw new CoordinatorUnavailableError('not started: call start() first');
    if (this.runs.has(spec.id)) throw new EngineError(`objective ${spec.id} is already running`, undefined);
    const root = join(this.shmPath, spec.id);
    const collector = new ResultCollector(root, runRange(spec));
    let markDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      markDone = resolve;
    });
    const run: ActiveRun = { spec, root, engine: undefined, collector, startedAt: Date.now(), stopping: false, done, markDone };
    // Registered before the first await, so a concurrent call with the same id is refused above.
    this.runs.set(spec.id, run);
    if (
      await stat(root).then(
        () => true,
        () => false,
      )
    ) {
      this.runs.delete(spec.id);
      run.markDone();
      throw new EngineError(`swarm root ${root} already exists (another run of ${spec.id}, or a leftover to remove)`, undefined);
    }
    this.finished.delete(spec.id);
    try {
      await writeObjective(root, {
        objective: spec.description,
        range: runRange(spec),
        ...(spec.tasks ? { tasks: spec.tasks } : {}),
        ...(spec.taskEnv ? { taskEnv: spec.taskEnv } : {}),
      });
      collector.on('response', (r) => {
        this.emit('response', r, spec.id);
        this.emit(r.status === 'completed' ? 'agent:completed' : 'agent:failed', { objectiveId: spec.id, response: r, timestamp: Date.now() });
      });
      collector.on('status', (s) => this.emit('status', toRunStatus(s)));
      collector.on('quarantine', (q) => {
        this.log.warn({ objectiveId: spec.id, file: q.file, reason: q.reason }, 'quarantined a malformed engine file');
        this.emit('quarantine', q, spec.id);
      });
      collector.on('error', (err) => this.log.error({ objectiveId: spec.id, err }, 'result collector error'));
      await collector.start();
      this.emit('objective:started', {
        objectiveId: spec.id,
        agents: rangeSize(runRange(spec)),
        alreadyFinal: (spec.completedIndexes?.length ?? 0) + (spec.failedIndexes?.length ?? 0),
        strayAgentsKilled: 0,
        timestamp: Date.now(),
      });
      const exitCode = await this.runEngine(bash, run);
      await collector.sweep();
      const { result, engineFailed } = runResult({
        spec,
        responses: collector.collected(),
        fileStatus: collector.status,
        exitCode,
        stopping: run.stopping,
        elapsedMs: Date.now() - run.startedAt,
        stderrTail: run.engine?.stderrTail ?? '',
      });
      if (engineFailed) this.log.error({ objectiveId: spec.id, exitCode, stderr: lastLine(run.engine?.stderrTail ?? '') }, 'engine failed');
      if (run.stopping) {
        const delivered = new Set(collector.collected().map((r) => r.index));
        const interrupted = await interruptedAgents(root, runRange(spec), delivered);
        if (interrupted.length) result.interruptedIndexes = interrupted;
      }
      this.finished.set(spec.id, { result, range: runRange(spec) });
      this.emit('objective:completed', { objectiveId: spec.id, status: result.status, timestamp: Date.now() });
      return result;
    } finally {
      try {
        await collector.close();
        if (this.beforeCleanup && !run.stopping) {
          await this.beforeCleanup(root, spec).catch((err: unknown) => this.log.warn({ err }, 'beforeCleanup hook failed'));
        }
        await this.cleanup(run);
      } finally {
        this.runs.delete(spec.id);
        run.markDone();
      }
    }
  }

  /** Runs the engine to its end; its exit code (undefined: a signal ended it, or stop() came first). */
  private async runEngine(bash: string, run: ActiveRun): Promise<number | undefined> {
    if (run.stopping) return undefined; // stop() came while the objective was being written
    const engine = new EngineProcess(bash, engineArgs(run.spec, { bashDir: this.bashDir, shmPath: this.shmPath }), this.location.env, (chunk) => {
      if (this.log.isLevelEnabled('debug')) this.log.debug({ objectiveId: run.spec.id, engine: chunk.trimEnd() }, 'engine stderr');
    });
    run.engine = engine;
    const { exitCode, signal } = await engine.exited();
    this.log.debug({ objectiveId: run.spec.id, exitCode, signal }, 'engine exited');
    return exitCode;
  }

  /** Removes the swarm root and any process that escaped the engine's own cleanup. */
  private async cleanup(run: ActiveRun): Promise<void> {
    for (const pid of await killStrays(run.spec, run.root)) {
      this.log.warn({ objectiveId: run.spec.id, pid }, 'killed a swarm process left behind by the engine');
    }
    await rm(run.root, { recursive: true, force: true, maxRetries: 3 });
  }

  async getSwarmStatus(objectiveId: string): Promise<RunStatus | undefined> {
    const run = this.runs.get(objectiveId);
    if (run) {
      const s = run.collector.status;
      if (s) return toRunStatus(s);
      return statusFromResponses(run.spec, run.collector.collected(), 'running', Date.now() - run.startedAt);
    }
    return this.finished.get(objectiveId)?.result.status;
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

  /** The objective's agents: the running one's responses so far, else the finished result's. */
  private agentView(objectiveId: string): AgentView | undefined {
    const run = this.runs.get(objectiveId);
    const finished = this.finished.get(objectiveId);
    const responses = run ? run.collector.collected() : finished?.result.responses;
    const range = run ? runRange(run.spec) : finished?.range;
    if (!responses || !range) return undefined;
    const byIndex = new Map(responses.map((r) => [r.index, r]));
    // The engine reports results, not attempt starts: an agent without a response is running until the run ends.
    const waiting: AgentState = run ? 'running' : 'pending';
    return { range, response: (i) => byIndex.get(i), state: (i) => byIndex.get(i)?.status ?? waiting };
  }

  /** Stops every run: TERM to each engine's process group, KILL after the grace period, root removed. */
  async stop(): Promise<void> {
    await this.preflight.cancel();
    const runs = [...this.runs.values()];
    await Promise.all(
      runs.map(async (run) => {
        run.stopping = true;
        await run.engine?.stop(this.stopGraceMs);
      }),
    );
    // executeObjective's finally removes roots; wait for it.
    await Promise.all(runs.map((run) => run.done));
  }
}
