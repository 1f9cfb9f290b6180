// The agents of a V1 run, run by the agent launcher (bash/native/launcher,
// docs/v2-engine.md "Who runs an agent"): the same program and the same
// response encoder as V2, so the agent contract (docs/agent-contract.md) holds
// byte for byte. One `launcher session` serves every attempt of a run: in a
// coordinator pod (CFN_LAUNCHER_DIR set) it hands them to the agent
// container's launcher; without one it runs a launcher of its own. If it
// dies, the attempts it had are failed (the scheduler retries them) and the
// next attempt starts a new one. In a pod whose agents are isolated per slot
// (CFN_LAUNCHER_SLOTS in the environment it inherits) the session gives each
// slot's launcher one attempt at a time.
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { join } from 'node:path';
import { z } from 'zod';
import { findPackageRoot } from '../../util/package-root.js';

/** What every attempt of a run shares. */
export interface AgentRunInput {
  argv: readonly string[];
  objectiveId: string;
  objective: string;
  agentsTotal: number;
  maxOutputBytes: number;
  /** Between TERM and KILL when stopped (default 1000 ms). */
  killGraceMs?: number;
  /** Variables every agent gets (spec.agent.env), under the contract's. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** One attempt of one agent. */
export interface AgentAttempt {
  agentIndex: number;
  task: string;
  attempt: number;
  signal: AbortSignal;
  /** The agent's own variables (its task's env): they never override the contract's. */
  env?: Readonly<Record<string, string | undefined>>;
}

export type AgentAttemptInput = AgentRunInput & AgentAttempt;

export interface AgentAttemptResult {
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  outputBytes: number;
  outputTruncated: boolean;
  /** Last stderr line (or why the attempt could not run / was stopped) when not ok. */
  error: string | null;
  aborted: boolean;
}

/** CFN_TASK_ENV_MAX of bash/lib/common.sh: the largest text passed in one environment variable. */
export const TASK_ENV_MAX_BYTES = 131000;

/** TEXT for the environment: without NUL bytes, unset (undefined) beyond TASK_ENV_MAX_BYTES. */
const envText = (text: string): string | undefined => {
  const clean = text.replaceAll('\0', '');
  return Buffer.byteLength(clean, 'utf8') <= TASK_ENV_MAX_BYTES ? clean : undefined;
};

/** The launcher of this package (built by npm run build / scripts/build-native.sh). */
export const launcherPath = (): string => join(findPackageRoot(import.meta.url), 'bash', 'native', 'launcher');

/** A name the launcher takes as an agent's own variable (a variable name, not the engine's). */
const TASK_ENV_NAME = /^(?!CFN_)(?!(AGENT_ID|AGENT_INDEX|OBJECTIVE_ID|SWARM_ID)$)[A-Za-z_][A-Za-z0-9_]*$/;

/** The largest number of agents one launcher session runs at once (the scheduler bounds it). */
const SESSION_CONCURRENCY = 100000;

const responseSchema = z.object({
  status: z.enum(['completed', 'failed']),
  exitCode: z.number().int().nullable(),
  output: z.string(),
  outputBytes: z.number().int().nonnegative(),
  outputTruncated: z.boolean(),
  error: z.string().nullable(),
});
type Response = z.infer<typeof responseSchema>;

/** A frame of the launcher's request stream (launcher.c): type, 4-byte little-endian length, payload. */
function frame(type: 'O' | 'R' | 'S', payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32LE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

interface Pending {
  attempt: AgentAttempt;
  resolve(r: Response | 'stopped'): void;
  reject(err: Error): void;
}

type Session = ChildProcessByStdio<Writable, Readable, Readable>;

/** One launcher session for every attempt of a run; close() when the run is over. */
export class AgentLauncher {
  private session: Session | undefined;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly run: AgentRunInput) {
    if (run.argv.length === 0) throw new Error('agentCommand is empty');
  }

  async attempt(a: AgentAttempt): Promise<AgentAttemptResult> {
    const stopped = (): AgentAttemptResult => ({
      ok: false,
      exitCode: null,
      signal: null,
      output: '',
      outputBytes: 0,
      outputTruncated: false,
      error: reasonText(a.signal),
      aborted: true,
    });
    if (a.signal.aborted) return stopped();
    if (this.pending.has(a.agentIndex)) throw new Error(`agent-${a.agentIndex} already has an attempt running`);
    const session = this.session ?? this.start();
    const answer = new Promise<Response | 'stopped'>((resolve, reject) => this.pending.set(a.agentIndex, { attempt: a, resolve, reject }));
    const own = Object.entries(a.env ?? {}).filter((e): e is [string, string] => e[1] !== undefined && TASK_ENV_NAME.test(e[0]));
    const vars = Buffer.from(own.map(([k, v]) => `${k}=${v.replaceAll('\0', '')}\0`).join(''));
    const task = Buffer.from(a.task);
    session.stdin.write(frame('R', Buffer.concat([Buffer.from(`${a.agentIndex} ${a.attempt} 1 ${vars.length}\n`), vars, task])));
    const onAbort = (): void => {
      if (this.session === session && this.pending.has(a.agentIndex)) session.stdin.write(frame('S', Buffer.from(String(a.agentIndex))));
    };
    a.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await answer;
      // A stopped attempt has no answer, even when it ended on its own meanwhile.
      if (r === 'stopped' || a.signal.aborted) return stopped();
      const output = this.run.maxOutputBytes === 0 ? '' : r.output;
      return {
        ok: r.status === 'completed',
        exitCode: r.exitCode,
        signal: null,
        output,
        outputBytes: r.outputBytes,
        outputTruncated: r.outputTruncated || (this.run.maxOutputBytes === 0 && r.outputBytes > 0),
        error: r.error,
        aborted: false,
      };
    } finally {
      a.signal.removeEventListener('abort', onAbort);
    }
  }

  /** Ends the session once its attempts are answered. */
  async close(): Promise<void> {
    const session = this.session;
    if (!session) return;
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    session.stdin.end();
    await closed;
  }

  private start(): Session {
    const run = this.run;
    const killAfter = ((run.killGraceMs ?? 1000) / 1000).toFixed(3);
    const args = [
      'session',
      '--max-output',
      String(run.maxOutputBytes || 1),
      '--timeout-text',
      '0',
      '--kill-after',
      killAfter,
      String(SESSION_CONCURRENCY),
      '0',
      '0',
      '--',
      ...run.argv,
    ];
    const env: Record<string, string | undefined> = {
      ...process.env,
      ...run.env,
      OBJECTIVE_ID: run.objectiveId,
      SWARM_ID: run.objectiveId,
      CFN_OBJECTIVE: envText(run.objective),
      CFN_AGENTS_TOTAL: String(run.agentsTotal),
      CFN_KILL_AFTER: killAfter,
    };
    const session = spawn(launcherPath(), args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.session = session;
    let stderr = '';
    session.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4096)));
    // A session that died mid-write: its close settles the attempts.
    session.stdin.on('error', () => undefined);
    let buffered = '';
    session.stdout.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        this.onLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
    const gone = (why: string): void => {
      if (this.session === session) this.session = undefined;
      const err = new Error(`agent launcher ${why}: ${stderr.trim().split('\n').pop() ?? ''}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    session.on('error', (err) => gone(`did not start (${err.message})`));
    session.on('close', (code, sig) => gone(`exited ${code ?? sig}`));
    session.stdin.write(frame('O', Buffer.from(run.objective)));
    return session;
  }

  /** "W INDEX RESPONSE" or "I INDEX" (stopped: no answer). */
  private onLine(line: string): void {
    const m = /^([WI]) (\d+)(?: (.*))?$/s.exec(line);
    if (!m) return;
    const index = Number(m[2]);
    const p = this.pending.get(index);
    if (!p) return;
    this.pending.delete(index);
    if (m[1] === 'I') {
      p.resolve('stopped');
      return;
    }
    try {
      p.resolve(responseSchema.parse(JSON.parse(m[3] ?? '')));
    } catch (err) {
      p.reject(new Error(`agent launcher: a response of agent-${index} that is not one: ${(err as Error).message}`));
    }
  }
}

/** One attempt in a launcher session of its own. */
export async function runAgentAttempt(input: AgentAttemptInput): Promise<AgentAttemptResult> {
  const launcher = new AgentLauncher(input);
  try {
    return await launcher.attempt(input);
  } finally {
    await launcher.close();
  }
}

function reasonText(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : String(r ?? 'aborted');
}
