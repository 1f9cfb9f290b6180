// Process control of one V2 engine run: the `coordinator-cli.sh run`
// arguments, the engine in its own process group (stderr tail kept), its stop
// (TERM, then KILL after a grace period) and the swarm processes it left behind.
import { join } from 'node:path';
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import type { ObjectiveSpec } from '../types.js';
import { engineRangeArg, isWholeSwarm, runRange } from '../index-range.js';
import { killStrayAgents } from '../stray-agents.js';
import { processesWithArgUnder, signalGroup, signalProcess } from '../../util/proc.js';
import { compressRanges } from '../../util/ranges.js';

/** How much of the engine's stderr a run keeps: its last line says why it failed. */
export const STDERR_TAIL_BYTES = 8192;

/** Arguments for `coordinator-cli.sh run` (its path first); the agent argv goes after `--`, never through a shell. */
export function engineArgs(spec: ObjectiveSpec, where: { bashDir: string; shmPath: string }): string[] {
  const args = [
    join(where.bashDir, 'coordinator-cli.sh'),
    'run',
    '--keep',
    '--swarm-id',
    spec.id,
    '--shm-path',
    where.shmPath,
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

/** The last non-blank line of a text (an engine's reason on stderr), trimmed; '' when none. */
export function lastLine(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  return lines[lines.length - 1]?.trim() ?? '';
}

/** The engine running in its own process group. */
export class EngineProcess {
  private readonly child: ResultPromise;
  private tail = '';

  /** Starts `bash args...` with exactly `env`; `onStderr` sees each stderr chunk. */
  constructor(bash: string, args: readonly string[], env: NodeJS.ProcessEnv, onStderr?: (chunk: string) => void) {
    this.child = execa(bash, args, {
      env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'pipe',
      buffer: false,
      // Own process group: a stop signals the whole tree at once.
      detached: true,
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      this.tail = (this.tail + chunk).slice(-STDERR_TAIL_BYTES);
      onStderr?.(chunk);
    });
  }

  /** The last STDERR_TAIL_BYTES of the engine's stderr. */
  get stderrTail(): string {
    return this.tail;
  }

  /** Resolves when the engine exited: its exit code (undefined when a signal ended it) and that signal. */
  async exited(): Promise<{ exitCode: number | undefined; signal: string | undefined }> {
    const result = await this.child;
    return { exitCode: result.exitCode, signal: result.signal };
  }

  /** Signals the engine's process group while its leader runs (after that, the pid may name another process). */
  signal(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return;
    signalGroup(pid, signal);
  }

  /** TERM to the group, KILL after `graceMs` if the engine is still running, then KILL to whatever is left in the group. */
  async stop(graceMs: number): Promise<void> {
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      await this.child;
    } finally {
      clearTimeout(timer);
    }
    if (this.child.pid !== undefined) signalGroup(this.child.pid, 'SIGKILL');
  }
}

/**
 * SIGKILLs the processes of a run that escaped the engine's own cleanup: its
 * agents (killStrayAgents) and the engine's scripts (they carry --root
 * <root>). Returns their pids.
 */
export async function killStrays(spec: ObjectiveSpec, root: string): Promise<number[]> {
  const [agents, scripts] = await Promise.all([killStrayAgents(spec), processesWithArgUnder(root).catch(() => [] as number[])]);
  for (const pid of scripts) signalProcess(pid, 'SIGKILL');
  return [...new Set([...agents, ...scripts])];
}
