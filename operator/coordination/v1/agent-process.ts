// One attempt of one agent: the agent command run as a real child process with
// the agent contract (docs/agent-contract.md), byte for byte like V2.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

export interface AgentAttemptInput {
  argv: readonly string[];
  agentIndex: number;
  objectiveId: string;
  task: string;
  objective: string;
  attempt: number;
  agentsTotal: number;
  maxOutputBytes: number;
  signal: AbortSignal;
  /** Between TERM and KILL when stopped (default 1000 ms). */
  killGraceMs?: number;
  /** Extra environment (tests); the contract variables always win. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Called with the pid once spawned (so a coordinator can account for its processes). */
  onSpawn?(child: ChildProcess): void;
}

export interface AgentAttemptResult {
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  outputBytes: number;
  outputTruncated: boolean;
  /** Last stderr line (or why the process could not run / was stopped) when not ok. */
  error: string | null;
  aborted: boolean;
}

const STDERR_TAIL_BYTES = 8192;

function lastLine(tail: Buffer): string | null {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(tail);
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines.length ? lines[lines.length - 1]! : null;
}

/** Signals the agent's whole process group (it is spawned detached as the leader). */
function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** CFN_TASK_ENV_MAX of bash/lib/common.sh: the largest text passed in one environment variable. */
export const TASK_ENV_MAX_BYTES = 131000;

/** TEXT for the environment: without NUL bytes, unset (undefined) beyond TASK_ENV_MAX_BYTES. */
const envText = (text: string): string | undefined => {
  const clean = text.replaceAll('\0', '');
  return Buffer.byteLength(clean, 'utf8') <= TASK_ENV_MAX_BYTES ? clean : undefined;
};

export function runAgentAttempt(input: AgentAttemptInput): Promise<AgentAttemptResult> {
  const [file, ...args] = input.argv;
  if (file === undefined) throw new Error('agentCommand is empty');
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...input.env,
    AGENT_ID: `agent-${input.agentIndex}`,
    AGENT_INDEX: String(input.agentIndex),
    OBJECTIVE_ID: input.objectiveId,
    SWARM_ID: input.objectiveId,
    // Environment strings cannot hold NUL, and exec takes at most
    // TASK_ENV_MAX_BYTES in one: stdin carries the exact bytes (as in V2).
    CFN_TASK: envText(input.task),
    CFN_OBJECTIVE: envText(input.objective),
    CFN_ATTEMPT: String(input.attempt),
    CFN_AGENTS_TOTAL: String(input.agentsTotal),
  };

  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let outputBytes = 0;
    let stderrTail = Buffer.alloc(0);
    let spawnError: Error | undefined;
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;

    if (input.signal.aborted) {
      resolve({ ok: false, exitCode: null, signal: null, output: '', outputBytes: 0, outputTruncated: false, error: reasonText(input.signal), aborted: true });
      return;
    }

    // detached: its own process group, so TERM/KILL reach whatever it forked.
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true, shell: false });
    input.onSpawn?.(child);

    const onAbort = (): void => {
      aborted = true;
      killGroup(child, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), input.killGraceMs ?? 1000);
    };
    input.signal.addEventListener('abort', onAbort, { once: true });

    child.stdout!.on('data', (chunk: Buffer) => {
      outputBytes += chunk.length;
      if (kept < input.maxOutputBytes) {
        const take = chunk.subarray(0, input.maxOutputBytes - kept);
        chunks.push(take);
        kept += take.length;
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderrTail = Buffer.concat([stderrTail, chunk]);
      if (stderrTail.length > STDERR_TAIL_BYTES) stderrTail = stderrTail.subarray(stderrTail.length - STDERR_TAIL_BYTES);
    });
    // An agent that never reads stdin closes the pipe early: EPIPE is not a failure.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input.task);

    child.on('error', (err) => {
      spawnError = err;
    });
    child.on('exit', () => {
      // The leader is gone; nothing it forked may outlive the attempt (or hold our pipes open).
      killGroup(child, 'SIGKILL');
    });
    child.on('close', (code, sig) => {
      if (settled) return;
      settled = true;
      if (killTimer) clearTimeout(killTimer);
      input.signal.removeEventListener('abort', onAbort);
      const ok = !aborted && spawnError === undefined && code === 0;
      let error: string | null = null;
      if (!ok) {
        if (aborted) error = reasonText(input.signal);
        else if (spawnError) error = spawnError.message;
        else error = lastLine(stderrTail) ?? (sig ? `killed by ${sig}` : `exit code ${code}`);
      }
      resolve({
        ok,
        exitCode: code,
        signal: sig,
        output: new TextDecoder('utf-8', { fatal: false }).decode(Buffer.concat(chunks, kept)),
        outputBytes,
        outputTruncated: outputBytes > kept,
        error,
        aborted,
      });
    });
  });
}

function reasonText(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : String(r ?? 'aborted');
}
