// V2: drives the bash engine in bash/ (docs/v2-engine.md). TypeScript writes the
// objective and tasks into the swarm root, runs `coordinator-cli.sh run`, collects
// the responses and the final status.json, then removes the root.
import { EventEmitter } from 'node:events';
import { access, constants, readdir, rm, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { agentResponseOf, agentStateOf, listAgentsOf } from '../agent-view.js';
import type { AgentView } from '../agent-view.js';
import type { AgentInfo, AgentResponse, AgentState, Capabilities, HealthReport, ICoordinator, ObjectiveResult, ObjectiveSpec, SwarmStatus } from '../types.js';
import type { Logger } from '../../observability/logger.js';
import { createLogger } from '../../observability/logger.js';
import { findPackageRoot } from '../../util/package-root.js';
import { runStatus } from '../delivery.js';
import { killGroupAndWait, processesWithArgUnder, processesWithEnv, signalGroup, signalProcess } from '../../util/proc.js';
import { compressRanges } from '../../util/ranges.js';
import { agentsInRange, engineRangeArg, inRange, isWholeSwarm, rangeSize, runRange } from '../index-range.js';
import type { IndexRange } from '../index-range.js';
import { writeObjective } from './message-bridge.js';
import { ResultCollector } from './result-collector.js';
import type { QuarantineEvent } from './result-collector.js';
import { healthFileSchema, parseJsonWith } from './schemas.js';
import type { StatusFile } from './schemas.js';
import { validateSpec } from './spec.js';

export const DEFAULT_SHM_PATH = '/dev/shm/cfn';

/** Engine exit codes (docs/v2-engine.md). */
export const ENGINE_EXIT = { ok: 0, engineFailure: 1, usage: 2, preflight: 3, deadline: 4, sigint: 130, sigterm: 143 } as const;

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

export class CoordinatorUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`V2 coordinator unavailable: ${reason}`);
    this.name = 'CoordinatorUnavailableError';
  }
}

export class EngineError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | undefined,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** Events; the `objective:*` and `agent:*` ones have the same names and payloads as V1's. */
export interface BashCoordinatorEvents {
  response: [AgentResponse, string];
  status: [SwarmStatus];
  quarantine: [QuarantineEvent, string];
  'objective:started': [{ objectiveId: string; agents: number; alreadyFinal: number; strayAgentsKilled: number; timestamp: number }];
  'agent:completed': [{ objectiveId: string; response: AgentResponse; timestamp: number }];
  'agent:failed': [{ objectiveId: string; response: AgentResponse; timestamp: number }];
  'objective:completed': [{ objectiveId: string; status: SwarmStatus; timestamp: number }];
}

interface ActiveRun {
  spec: ObjectiveSpec;
  root: string;
  child: ResultPromise | undefined;
  collector: ResultCollector;
  startedAt: number;
  stopping: boolean;
  stderrTail: string;
  /** Resolves once executeObjective has cleaned up (root removed). */
  done: Promise<void>;
  markDone: () => void;
}

const STDERR_TAIL_BYTES = 8192;

/** Finds an executable by name on a PATH string, or checks an explicit path. */
export async function resolveExecutable(nameOrPath: string, pathEnv: string | undefined): Promise<string | undefined> {
  const candidates = nameOrPath.includes('/')
    ? [nameOrPath]
    : (pathEnv ?? '')
        .split(delimiter)
        .filter((d) => d !== '')
        .map((d) => join(d, nameOrPath));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      if ((await stat(c)).isFile()) return isAbsolute(c) ? c : join(process.cwd(), c);
    } catch {
      // not here
    }
  }
  return undefined;
}

function toSwarmStatus(s: StatusFile): SwarmStatus {
  return {
    objectiveId: s.objectiveId,
    status: s.status,
    agents: { total: s.agents.total, completed: s.agents.completed, failed: s.agents.failed },
    deliveryRate: s.deliveryRate,
    coordinationTime: s.coordinationTime,
    throughputAgentsPerSec: s.throughputAgentsPerSec,
  };
}

/** A status computed from the responses (and the agents final in an earlier run), for when status.json is missing or stale; it counts the run's range. */
function statusFromResponses(spec: ObjectiveSpec, responses: readonly AgentResponse[], state: SwarmStatus['status'], elapsedMs: number): SwarmStatus {
  const completedNow = responses.filter((r) => r.status === 'completed').length;
  const completed = completedNow + (spec.completedIndexes?.length ?? 0);
  const failed = responses.length - completedNow + (spec.failedIndexes?.length ?? 0);
  return runStatus(spec.id, state, { total: rangeSize(runRange(spec)), completed, failed, completedThisRun: completedNow }, elapsedMs);
}

function lastLine(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  return lines[lines.length - 1]?.trim() ?? '';
}

export class BashCoordinator extends EventEmitter<BashCoordinatorEvents> implements ICoordinator {
  readonly version = 'v2' as const;
  readonly bashDir: string;
  readonly shmPath: string;
  private readonly bashName: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly stopGraceMs: number;
  private readonly log: Logger;
  private readonly beforeCleanup: BashCoordinatorOptions['beforeCleanup'];
  private bashBinary: string | undefined;
  private readonly runs = new Map<string, ActiveRun>();
  /** Finished runs by objective id, with the index range each ran. */
  private readonly finished = new Map<string, { result: ObjectiveResult; range: IndexRange }>();
  /** Preflights in flight (own process groups): stop() kills them, so a start abandoned by a timeout leaves no process. */
  private readonly preflights = new Set<ResultPromise>();
  /** Bumped by stop(): a preflight that began before it does not spawn afterwards. */
  private stopEpoch = 0;

  constructor(options: BashCoordinatorOptions = {}) {
    super();
    this.bashDir = options.bashDir ?? join(findPackageRoot(import.meta.url), 'bash');
    this.bashName = options.bashPath ?? 'bash';
    this.env = { ...(options.env ?? process.env) };
    this.shmPath = options.shmPath ?? this.env.CFN_SHM_PATH ?? DEFAULT_SHM_PATH;
    this.env.CFN_SHM_PATH = this.shmPath;
    if (options.busMode) this.env.CFN_BUS_MODE = options.busMode;
    this.stopGraceMs = options.stopGraceMs ?? 5000;
    this.log = options.logger ?? createLogger({ name: 'cfn-v2' });
    this.beforeCleanup = options.beforeCleanup;
  }

  capabilities(): Capabilities {
    return { version: 'v2', maxAgents: 100_000, persistentResume: false };
  }

  private script(name: string): string {
    return join(this.bashDir, name);
  }

  /** The bash binary and the engine scripts, or the precise reason they are unusable. */
  private async locateEngine(): Promise<string> {
    const bash = await resolveExecutable(this.bashName, this.env.PATH);
    if (!bash) {
      throw new CoordinatorUnavailableError(
        this.bashName.includes('/')
          ? `bash not executable at ${this.bashName}`
          : `bash not found: no executable "${this.bashName}" on PATH=${this.env.PATH ?? '(unset)'}`,
      );
    }
    for (const name of ['coordinator-cli.sh', 'health-monitor.sh']) {
      try {
        await access(this.script(name), constants.R_OK);
      } catch {
        throw new CoordinatorUnavailableError(`engine script missing: ${this.script(name)}`);
      }
    }
    return bash;
  }

  /** Runs `health-monitor.sh preflight --json`; never throws. */
  private async preflight(): Promise<HealthReport> {
    const epoch = this.stopEpoch;
    let bash: string;
    try {
      bash = await this.locateEngine();
    } catch (err) {
      const reason = err instanceof CoordinatorUnavailableError ? err.reason : (err as Error).message;
      return { healthy: false, reason, checks: { engine: { ok: false, detail: reason } } };
    }
    if (epoch !== this.stopEpoch) return { healthy: false, reason: 'stopped during preflight', checks: { preflight: { ok: false, detail: 'stopped' } } };
    const child = execa(bash, [this.script('health-monitor.sh'), 'preflight', '--json', '--shm-path', this.shmPath], {
      env: this.env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: 30_000,
      // Own process group: cancelling kills whatever the preflight started too.
      detached: true,
    });
    this.preflights.add(child);
    let result: Awaited<typeof child>;
    try {
      result = await child;
    } finally {
      this.preflights.delete(child);
      if (child.pid !== undefined) await killGroupAndWait(child.pid);
    }
    if (epoch !== this.stopEpoch) return { healthy: false, reason: 'stopped during preflight', checks: { preflight: { ok: false, detail: 'stopped' } } };
    const stdout = String(result.stdout ?? '').trim();
    const stderr = String(result.stderr ?? '');
    const parsed = stdout === '' ? undefined : parseJsonWith(healthFileSchema, stdout.split('\n').pop() as string);
    if (parsed?.ok) {
      const h = parsed.value;
      const checks = h.checks ?? {};
      const healthy = h.healthy && result.exitCode === 0;
      const failing = Object.entries(checks).find(([, c]) => !c.ok);
      const reason = healthy
        ? undefined
        : (h.reason ?? (failing ? `${failing[0]}: ${failing[1].detail}` : undefined) ?? (lastLine(stderr) || `preflight exited ${result.exitCode}`));
      return reason === undefined ? { healthy, checks } : { healthy, reason, checks };
    }
    const why = result.timedOut
      ? 'preflight timed out after 30 s'
      : lastLine(stderr) ||
        (parsed && !parsed.ok ? `preflight printed invalid JSON (${parsed.reason})` : `preflight exited ${result.exitCode} without a report`);
    return { healthy: false, reason: why, checks: { preflight: { ok: false, detail: why } } };
  }

  async start(): Promise<void> {
    const report = await this.preflight();
    if (!report.healthy) throw new CoordinatorUnavailableError(report.reason ?? 'preflight failed');
    this.bashBinary = await this.locateEngine();
    this.log.debug({ bash: this.bashBinary, bashDir: this.bashDir, shmPath: this.shmPath, launcher: report.checks.launcher?.detail }, 'v2 coordinator ready');
  }

  async healthCheck(): Promise<HealthReport> {
    return this.preflight();
  }

  /** Arguments for `coordinator-cli.sh run`; the agent argv goes after `--`, never through a shell. */
  engineArgs(spec: ObjectiveSpec): string[] {
    const args = [
      this.script('coordinator-cli.sh'),
      'run',
      '--keep',
      '--swarm-id',
      spec.id,
      '--shm-path',
      this.shmPath,
      '--agents',
      String(spec.agents),
      '--concurrency',
      String(spec.concurrency),
      '--agent-timeout',
      String(spec.agentTimeoutSeconds),
      '--retries',
      String(spec.retries),
      '--timeout',
      String(spec.timeoutSeconds),
      '--max-output',
      String(spec.maxOutputBytes),
    ];
    if (spec.noRetryExitCodes && spec.noRetryExitCodes.length > 0) args.push('--no-retry-exit-codes', spec.noRetryExitCodes.join(','));
    if (!isWholeSwarm(spec)) args.push('--index-range', engineRangeArg(runRange(spec)));
    if (spec.completedIndexes && spec.completedIndexes.length > 0) args.push('--completed-indexes', compressRanges(spec.completedIndexes));
    if (spec.failedIndexes && spec.failedIndexes.length > 0) args.push('--failed-indexes', compressRanges(spec.failedIndexes));
    args.push('--', ...spec.agentCommand);
    return args;
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
    const run: ActiveRun = { spec, root, child: undefined, collector, startedAt: Date.now(), stopping: false, stderrTail: '', done, markDone };
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
      collector.on('status', (s) => this.emit('status', toSwarmStatus(s)));
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
      const result = this.buildResult(run, exitCode);
      if (run.stopping) {
        const interrupted = await this.interruptedAgents(run);
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

  private async runEngine(bash: string, run: ActiveRun): Promise<number | undefined> {
    if (run.stopping) return undefined; // stop() came while the objective was being written
    const child = execa(bash, this.engineArgs(run.spec), {
      env: this.env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'pipe',
      buffer: false,
      // Own process group: stop() signals the whole tree at once.
      detached: true,
    });
    run.child = child;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      run.stderrTail = (run.stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
      if (this.log.isLevelEnabled('debug')) this.log.debug({ objectiveId: run.spec.id, engine: chunk.trimEnd() }, 'engine stderr');
    });
    const result = await child;
    this.log.debug({ objectiveId: run.spec.id, exitCode: result.exitCode, signal: result.signal }, 'engine exited');
    return result.exitCode;
  }

  private buildResult(run: ActiveRun, exitCode: number | undefined): ObjectiveResult {
    const { spec, collector } = run;
    const responses = collector.collected();
    const elapsed = Date.now() - run.startedAt;
    const fileStatus = collector.status;
    if (run.stopping) {
      return { status: statusFromResponses(spec, responses, 'stopped', elapsed), responses };
    }
    if (exitCode === ENGINE_EXIT.preflight) {
      throw new CoordinatorUnavailableError(lastLine(run.stderrTail) || 'engine preflight failed');
    }
    if (exitCode === ENGINE_EXIT.usage) {
      throw new EngineError(`engine rejected its arguments: ${lastLine(run.stderrTail) || 'usage error'}`, exitCode);
    }
    if (exitCode === ENGINE_EXIT.ok || exitCode === ENGINE_EXIT.deadline) {
      if (fileStatus && fileStatus.status !== 'running') {
        const status = toSwarmStatus(fileStatus);
        if (exitCode === ENGINE_EXIT.deadline) status.status = 'timeout';
        return { status, responses };
      }
      const final = responses.length + (spec.completedIndexes?.length ?? 0) + (spec.failedIndexes?.length ?? 0);
      const state = exitCode === ENGINE_EXIT.deadline ? 'timeout' : final >= rangeSize(runRange(spec)) ? 'completed' : 'failed';
      return { status: statusFromResponses(spec, responses, state, elapsed), responses };
    }
    // Publish timeout, a signal from outside, or a crash: the engine itself failed.
    this.log.error({ objectiveId: spec.id, exitCode, stderr: lastLine(run.stderrTail) }, 'engine failed');
    const status = fileStatus ? { ...toSwarmStatus(fileStatus), status: 'failed' as const } : statusFromResponses(spec, responses, 'failed', elapsed);
    return { status, responses };
  }

  /**
   * Agents whose attempt the stop cut short: their raw output files, or the
   * launcher relay's trace of them (work/agent-<i>.<pid>.out), are there, and they have no
   * response. Read after the engine exited, before the root is removed.
   */
  private async interruptedAgents(run: ActiveRun): Promise<number[]> {
    const names = await readdir(join(run.root, 'work')).catch(() => [] as string[]);
    const delivered = new Set(run.collector.collected().map((r) => r.index));
    const found = new Set<number>();
    const range = runRange(run.spec);
    for (const name of names) {
      const m = /^agent-(0|[1-9]\d*)\.\d+\.out$/.exec(name);
      const index = m ? Number(m[1]) : -1;
      if (inRange(range, index) && !delivered.has(index)) found.add(index);
    }
    return [...found].sort((a, b) => a - b);
  }

  /** Signals the engine's process group while its leader runs (after that, the pid may name another process). */
  private signalEngine(run: ActiveRun, signal: NodeJS.Signals): void {
    const pid = run.child?.pid;
    if (pid === undefined || run.child?.exitCode !== null || run.child.signalCode !== null) return;
    signalGroup(pid, signal);
  }

  /** Removes the swarm root and any process that escaped the engine's own cleanup. */
  private async cleanup(run: ActiveRun): Promise<void> {
    // Agents carry SWARM_ID (and, for a range, an AGENT_INDEX inside it); the engine's own scripts carry --root <root>.
    const [swarmAgents, scripts] = await Promise.all([
      processesWithEnv('SWARM_ID', run.spec.id).catch(() => []),
      processesWithArgUnder(run.root).catch(() => []),
    ]);
    const agents = isWholeSwarm(run.spec) ? swarmAgents : await agentsInRange(swarmAgents, runRange(run.spec));
    const strays = [...new Set([...agents, ...scripts])];
    for (const pid of strays) {
      this.log.warn({ objectiveId: run.spec.id, pid }, 'killing a swarm process left behind by the engine');
      signalProcess(pid, 'SIGKILL');
    }
    await rm(run.root, { recursive: true, force: true, maxRetries: 3 });
  }

  async getSwarmStatus(objectiveId: string): Promise<SwarmStatus | undefined> {
    const run = this.runs.get(objectiveId);
    if (run) {
      const s = run.collector.status;
      if (s) return toSwarmStatus(s);
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
    this.stopEpoch += 1;
    const preflights = [...this.preflights];
    await Promise.all(
      preflights.map(async (p) => {
        if (p.pid !== undefined) await killGroupAndWait(p.pid);
        await p.then(
          () => undefined,
          () => undefined,
        );
      }),
    );
    const runs = [...this.runs.values()];
    await Promise.all(
      runs.map(async (run) => {
        run.stopping = true;
        if (!run.child) return;
        this.signalEngine(run, 'SIGTERM');
        const timer = setTimeout(() => this.signalEngine(run, 'SIGKILL'), this.stopGraceMs);
        try {
          await run.child;
        } finally {
          clearTimeout(timer);
        }
        // Anything left in the group after the leader exited.
        if (run.child.pid !== undefined) signalGroup(run.child.pid, 'SIGKILL');
      }),
    );
    // executeObjective's finally removes roots; wait for it.
    await Promise.all(runs.map((run) => run.done));
  }
}
