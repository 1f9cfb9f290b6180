// One attempt of one agent, run by the agent launcher (bash/native/launcher,
// docs/v2-engine.md "Who runs an agent"): the same program and the same
// response encoder as V2, so the agent contract (docs/agent-contract.md) holds
// byte for byte. In a coordinator pod (CFN_LAUNCHER_DIR set) the attempt runs
// in the agent container; without one the launcher runs it as a local process.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { findPackageRoot } from '../../util/package-root.js';

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
  /** The agent's own variables (its task's env): they never override the contract's. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Called with the launcher's process once spawned (so a coordinator can account for its processes). */
  onSpawn?(child: ChildProcess): void;
}

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

/** A name the launcher takes in task-env/<i> (a variable name, not the engine's). */
const TASK_ENV_NAME = /^(?!CFN_)(?!(AGENT_ID|AGENT_INDEX|OBJECTIVE_ID|SWARM_ID)$)[A-Za-z_][A-Za-z0-9_]*$/;

const responseSchema = z.object({
  status: z.enum(['completed', 'failed']),
  exitCode: z.number().int().nullable(),
  output: z.string(),
  outputBytes: z.number().int().nonnegative(),
  outputTruncated: z.boolean(),
  error: z.string().nullable(),
});

export async function runAgentAttempt(input: AgentAttemptInput): Promise<AgentAttemptResult> {
  if (input.argv.length === 0) throw new Error('agentCommand is empty');
  const stopped = (): AgentAttemptResult => ({ ok: false, exitCode: null, signal: null, output: '', outputBytes: 0, outputTruncated: false, error: reasonText(input.signal), aborted: true });
  if (input.signal.aborted) return stopped();
  const i = input.agentIndex;
  const root = await mkdtemp(join(tmpdir(), 'cfn-v1-agent-'));
  try {
    await Promise.all(['work', 'responses/.tmp', 'tasks', 'task-env'].map((d) => mkdir(join(root, d), { recursive: true })));
    const own = Object.entries(input.env ?? {}).filter((e): e is [string, string] => e[1] !== undefined && TASK_ENV_NAME.test(e[0]));
    await Promise.all([
      writeFile(join(root, 'objective.txt'), input.objective),
      writeFile(join(root, 'tasks', String(i)), input.task),
      writeFile(join(root, 'queue'), `${i}\n`),
      ...(own.length ? [writeFile(join(root, 'task-env', String(i)), own.map(([k, v]) => `${k}=${v.replaceAll('\0', '')}\0`).join(''))] : []),
    ]);
    const env: Record<string, string | undefined> = {
      ...process.env,
      ...input.env,
      OBJECTIVE_ID: input.objectiveId,
      SWARM_ID: input.objectiveId,
      CFN_OBJECTIVE: envText(input.objective),
      CFN_AGENTS_TOTAL: String(input.agentsTotal),
    };
    const killAfter = ((input.killGraceMs ?? 1000) / 1000).toFixed(3);
    const args = ['relay', '--max-output', String(input.maxOutputBytes || 1), '--timeout-text', '0', '--kill-after', killAfter, '--first-attempt', String(input.attempt)];
    args.push(root, join(root, 'queue'), '1', '0', '0', '--', ...input.argv);
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(launcherPath(), args, { env: { ...env, CFN_KILL_AFTER: killAfter }, stdio: ['ignore', 'ignore', 'pipe'] });
      input.onSpawn?.(child);
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4096)));
      const onAbort = (): void => void child.kill('SIGTERM');
      input.signal.addEventListener('abort', onAbort, { once: true });
      // Aborted while the attempt was being prepared: the listener came too late.
      if (input.signal.aborted) onAbort();
      child.on('error', reject);
      child.on('close', (c, sig) => {
        input.signal.removeEventListener('abort', onAbort);
        // Stopped: the launcher exits 143 (or dies of the TERM before it handles it).
        if (input.signal.aborted) resolve(143);
        else if (c !== 0 && c !== 143) reject(new Error(`agent launcher exited ${c ?? sig}: ${stderr.trim().split('\n').pop() ?? ''}`));
        else resolve(c);
      });
    });
    if (input.signal.aborted || code === 143) return stopped();
    const r = responseSchema.parse(JSON.parse(await readFile(join(root, 'responses', `agent-${i}.json`), 'utf8')));
    const output = input.maxOutputBytes === 0 ? '' : r.output;
    return {
      ok: r.status === 'completed',
      exitCode: r.exitCode,
      signal: null,
      output,
      outputBytes: r.outputBytes,
      outputTruncated: r.outputTruncated || (input.maxOutputBytes === 0 && r.outputBytes > 0),
      error: r.error,
      aborted: false,
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

function reasonText(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : String(r ?? 'aborted');
}
