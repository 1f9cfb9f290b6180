// `cfn run` flags -> one typed RunOptions object. The flag table and the zod
// schema are the single place to add options (V1 adds --version, --config, ...).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { ID_PATTERN, generateId } from '../util/ids.js';
import { ShellWordsError, splitShellWords } from '../util/shell-words.js';
import { DEFAULT_AGENT_COMMAND, DEFAULT_OBJECTIVE, DEFAULTS } from './defaults.js';
import { UsageError } from './usage-error.js';
import { parseTaskList, TaskListError } from '../tasks/task-list.js';
import type { Task, TaskFormat } from '../tasks/task-list.js';
import { shardRanges } from '../swarm/shards.js';
import type { IndexRange } from '../coordination/index-range.js';

export type VersionChoice = 'v1' | 'v2' | 'auto';

/** --shard I/N: shard I (0-based) of N, the agents shardRanges gives it. */
export interface ShardChoice {
  index: number;
  count: number;
}

export interface RunOptions {
  agents: number;
  /** --shard: run only this shard's index range of the agents; undefined: all of them. */
  shard: ShardChoice | undefined;
  /** The agents this run executes: the shard's range (shardRanges), else 0..agents-1. */
  indexRange: IndexRange;
  /** argv; never passed through a shell. */
  agentCommand: string[];
  objective: string;
  /** --tasks: one task per agent (agent i gets tasks[i]); undefined: every agent gets the objective. */
  tasks: Task[] | undefined;
  timeoutSeconds: number;
  agentTimeoutSeconds: number;
  retries: number;
  /** --no-retry-exit-codes: exit codes (1-255) that end an agent at once, never retried. */
  noRetryExitCodes: number[];
  concurrency: number;
  shmPath: string | undefined;
  /** Minimum delivery rate (completed agents / total, percent) for status completed and exit code 0. */
  minDelivery: number;
  maxOutputBytes: number;
  json: boolean;
  /** --results: every agent's result as one JSON line, written as it arrives. */
  resultsFile: string | undefined;
  swarmId: string;
  /** --version: beats COORDINATION_VERSION, rollout and the config file; undefined = detect. */
  version: VersionChoice | undefined;
  /** --rollout-percentage: beats V2_ROLLOUT_PERCENTAGE and the config file. */
  rolloutPercentage: number | undefined;
  /** --config: cfn.config.json to read (default: the one in the working directory, if any). */
  configFile: string | undefined;
  /** --no-fallback: a V2 that cannot start is an error (exit 3) instead of a V1 run. */
  noFallback: boolean;
  /** --memory-path: V1's SQLite file (default $CFN_MEMORY_PATH or .cfn/memory.sqlite). */
  memoryPath: string | undefined;
  help: boolean;
}

type OptionTable = NonNullable<ParseArgsConfig['options']>;

export const RUN_FLAGS = {
  agents: { type: 'string' },
  shard: { type: 'string' },
  'agent-command': { type: 'string' },
  objective: { type: 'string' },
  tasks: { type: 'string' },
  'tasks-format': { type: 'string' },
  timeout: { type: 'string' },
  'agent-timeout': { type: 'string' },
  retries: { type: 'string' },
  'no-retry-exit-codes': { type: 'string' },
  concurrency: { type: 'string' },
  'shm-path': { type: 'string' },
  'min-delivery': { type: 'string' },
  'max-output': { type: 'string' },
  json: { type: 'boolean' },
  results: { type: 'string' },
  'swarm-id': { type: 'string' },
  version: { type: 'string' },
  'rollout-percentage': { type: 'string' },
  config: { type: 'string' },
  'no-fallback': { type: 'boolean' },
  'memory-path': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionTable;

export const RUN_HELP = `Usage: cfn run (--agents N | --tasks FILE) [options] [-- AGENT-COMMAND ARGS...]

Runs one objective on N agents with the V2 coordinator (bash on tmpfs) or the
V1 fallback (TypeScript, SQLite memory), as chosen by --version or detection.

Options:
  --agents N              number of agents (1-100000; default: the number of --tasks)
  --shard I/N             run only shard I (0-based) of N: a contiguous range of the
                          agents (as the operator splits a Swarm's spec.shards), which
                          keep their indexes, tasks and CFN_AGENTS_TOTAL; the status
                          counts the range. Run the others with the same --swarm-id
  --agent-command CMD     agent command, split like a shell but never evaluated
                          (default: cat, which answers with its task); or give it after --
  --objective TEXT        objective text given to every agent in CFN_OBJECTIVE, and as its
                          task without --tasks (default: a built-in review task)
  --tasks FILE            one task per agent (- for stdin): agent i gets task i on stdin
                          and in CFN_TASK; one task per line, or JSON lines
                          {"task": "...", "env": [{"name": "N", "value": "V"}]}
  --tasks-format F        lines | jsonl | auto (default auto: jsonl when the first
                          non-blank line starts with {)
  --timeout S             overall deadline in seconds (default ${DEFAULTS.timeoutSeconds})
  --agent-timeout S       per-attempt agent timeout in seconds (default ${DEFAULTS.agentTimeoutSeconds})
  --retries R             retries of a failed attempt (default ${DEFAULTS.retries})
  --no-retry-exit-codes L exit codes that end an agent at once, never retried (e.g. 2,3; each 1-255)
  --concurrency C         agents running at once (default min(N, ${DEFAULTS.concurrency}))
  --shm-path DIR          tmpfs directory for swarm roots (default $CFN_SHM_PATH or /dev/shm/cfn)
  --min-delivery PCT      the run succeeds (status completed, exit 0) only when completed
                          agents / total reach PCT percent (default ${DEFAULTS.minDelivery})
  --max-output BYTES      bytes of agent stdout kept per response (default ${DEFAULTS.maxOutputBytes})
  --swarm-id ID           swarm id, ${ID_PATTERN.source} (default: generated)
  --version V             v1 | v2 | auto (auto: V2 when its preflight passes); beats
                          detection (default: COORDINATION_VERSION, then the config's
                          coordination.version, then the rollout percentage, else auto)
  --rollout-percentage P  route P% of swarm ids (a stable hash of --swarm-id) to V2
                          (beats V2_ROLLOUT_PERCENTAGE and the config file)
  --config FILE           cfn.config.json to read (default: ./cfn.config.json, else
                          ./claude-flow.config.json, if present)
  --no-fallback           when V2 cannot start, fail (exit 3) instead of running on V1
  --memory-path FILE      V1's SQLite file (default $CFN_MEMORY_PATH or .cfn/memory.sqlite)
  --json                  print exactly one JSON object with the result on stdout
  --results FILE          write each agent's result to FILE as it arrives: one JSON
                          line per agent (index, status, exitCode, output, error, ...;
                          see docs/results.md); FILE is replaced
  -h, --help              this help

Environment: COORDINATION_VERSION (v1|v2), V2_ROLLOUT_PERCENTAGE (0-100),
CFN_SHM_PATH, CFN_MEMORY_PATH, LOG_LEVEL.

Exit codes: 0 ok; 1 run failed or delivery (completed agents / total) below --min-delivery; 2 usage or config error;
3 coordinator unavailable (for example V2 cannot start and --no-fallback); 130 interrupted.
`;

function intFlag(flag: string, min: number, max: number) {
  return z.string().transform((s, ctx) => {
    const n = /^\s*\d+\s*$/.test(s) ? Number(s) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `--${flag} must be an integer from ${min} to ${max} (got ${JSON.stringify(s)})` });
      return z.NEVER;
    }
    return n;
  });
}

function numberFlag(flag: string, min: number, max: number, exclusiveMin = false) {
  return z.string().transform((s, ctx) => {
    const n = /^\s*\d+(\.\d+)?\s*$/.test(s) ? Number(s) : Number.NaN;
    if (!Number.isFinite(n) || (exclusiveMin ? n <= min : n < min) || n > max) {
      const range = exclusiveMin ? `greater than ${min} and at most ${max}` : `from ${min} to ${max}`;
      ctx.addIssue({ code: 'custom', message: `--${flag} must be a number ${range} (got ${JSON.stringify(s)})` });
      return z.NEVER;
    }
    return n;
  });
}

/** The raw flag values as parseArgs returns them, validated and converted. */
export const runFlagsSchema = z.object({
  agents: intFlag('agents', 1, 100_000).optional(),
  shard: z
    .string()
    .transform((s, ctx): ShardChoice => {
      const m = /^(\d{1,6})\/(\d{1,6})$/.exec(s.trim());
      const index = m ? Number(m[1]) : Number.NaN;
      const count = m ? Number(m[2]) : Number.NaN;
      if (!(count >= 1 && index >= 0 && index < count)) {
        ctx.addIssue({ code: 'custom', message: `--shard must be I/N with 0 <= I < N, like 0/4 for the first of four shards (got ${JSON.stringify(s)})` });
        return z.NEVER;
      }
      return { index, count };
    })
    .optional(),
  'agent-command': z.string().optional(),
  objective: z.string().optional(),
  tasks: z.string().min(1, '--tasks must not be empty').optional(),
  'tasks-format': z
    .string()
    .transform((s, ctx): TaskFormat => {
      if (s === 'lines' || s === 'jsonl' || s === 'auto') return s;
      ctx.addIssue({ code: 'custom', message: `--tasks-format must be lines, jsonl or auto (got ${JSON.stringify(s)})` });
      return z.NEVER;
    })
    .optional(),
  timeout: numberFlag('timeout', 0, 86_400, true).optional(),
  'agent-timeout': numberFlag('agent-timeout', 0, 86_400, true).optional(),
  retries: intFlag('retries', 0, 100).optional(),
  'no-retry-exit-codes': z
    .string()
    .transform((s, ctx) => {
      const codes = s.split(',').map((c) => (/^\s*\d{1,3}\s*$/.test(c) ? Number(c) : Number.NaN));
      if (codes.length > 255 || codes.some((c) => !Number.isInteger(c) || c < 1 || c > 255)) {
        ctx.addIssue({ code: 'custom', message: `--no-retry-exit-codes must list exit codes from 1 to 255, like 2,3 (got ${JSON.stringify(s)})` });
        return z.NEVER;
      }
      return [...new Set(codes)].sort((a, b) => a - b);
    })
    .optional(),
  concurrency: intFlag('concurrency', 1, 100_000).optional(),
  'shm-path': z.string().min(1, '--shm-path must not be empty').optional(),
  'min-delivery': numberFlag('min-delivery', 0, 100).optional(),
  'max-output': intFlag('max-output', 1, 64 * 1024 * 1024).optional(),
  json: z.boolean().optional(),
  results: z
    .string()
    .min(1, '--results must not be empty')
    .refine((s) => s !== '-', '--results needs a file (stdout carries the summary)')
    .optional(),
  'swarm-id': z
    .string()
    .transform((s, ctx) => {
      if (ID_PATTERN.test(s)) return s;
      ctx.addIssue({ code: 'custom', message: `--swarm-id must match ${ID_PATTERN.source} (got ${JSON.stringify(s)})` });
      return z.NEVER;
    })
    .optional(),
  version: z
    .string()
    .transform((s, ctx): VersionChoice => {
      if (s === 'v1' || s === 'v2' || s === 'auto') return s;
      ctx.addIssue({ code: 'custom', message: `--version must be v1, v2 or auto (got ${JSON.stringify(s)})` });
      return z.NEVER;
    })
    .optional(),
  'rollout-percentage': numberFlag('rollout-percentage', 0, 100).optional(),
  config: z.string().min(1, '--config must not be empty').optional(),
  'no-fallback': z.boolean().optional(),
  'memory-path': z.string().min(1, '--memory-path must not be empty').optional(),
  help: z.boolean().optional(),
});

function firstSentence(message: string): string {
  const line = message.split('\n')[0] ?? message;
  const end = line.indexOf('. ');
  return end === -1 ? line : line.slice(0, end);
}

/** Reads and parses --tasks FILE (- = stdin); a problem is a UsageError naming the file and line. */
function readTasks(file: string, format: TaskFormat): Task[] {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`--tasks ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  try {
    const tasks = parseTaskList(text, format);
    if (tasks.length === 0) throw new TaskListError('holds no task');
    return tasks;
  } catch (err) {
    if (err instanceof TaskListError) throw new UsageError(`--tasks ${file === '-' ? '(stdin)' : file}: ${err.message}`);
    throw err;
  }
}

/** One coordinator runs its agents one way (flat); a larger swarm is split into shards. */
export const TOPOLOGY_RETIRED =
  '--topology is gone: one coordinator runs its agents flat; split a large swarm into shards with --shard I/N (on Kubernetes: spec.shards, or spec.topology hybrid)';

/** Parses `cfn run` arguments (without the `run` word). Throws UsageError with one line. */
export function parseRunOptions(argv: readonly string[]): RunOptions {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof RUN_FLAGS; strict: true; allowPositionals: true; tokens: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: RUN_FLAGS, strict: true, allowPositionals: true, tokens: true });
  } catch (err) {
    if (argv.some((a) => a === '--topology' || a.startsWith('--topology='))) throw new UsageError(TOPOLOGY_RETIRED);
    throw new UsageError(firstSentence((err as Error).message).replace(/^Unknown option/, 'unknown option'));
  }
  const { values, positionals, tokens } = parsed;
  const checked = runFlagsSchema.safeParse(values);
  if (!checked.success) {
    throw new UsageError(checked.error.issues[0]?.message ?? 'invalid options');
  }
  const v = checked.data;
  const help = v.help ?? false;

  // Words after `--` are the agent argv as given; anything else positional is a mistake.
  const terminator = tokens.findIndex((t) => t.kind === 'option-terminator');
  const strayPositional = tokens.find((t, i) => t.kind === 'positional' && (terminator === -1 || i < terminator));
  if (strayPositional && strayPositional.kind === 'positional') {
    throw new UsageError(`unexpected argument ${JSON.stringify(strayPositional.value)} (put the agent command after -- or in --agent-command)`);
  }
  let agentCommand: string[];
  if (positionals.length > 0) {
    if (v['agent-command'] !== undefined) throw new UsageError('give the agent command either with --agent-command or after --, not both');
    agentCommand = positionals;
  } else {
    try {
      agentCommand = splitShellWords(v['agent-command'] ?? DEFAULT_AGENT_COMMAND);
    } catch (err) {
      if (err instanceof ShellWordsError) throw new UsageError(`--agent-command: ${err.message}`);
      throw err;
    }
  }
  if (agentCommand.length === 0 && !help) throw new UsageError('--agent-command is empty');

  const tasks = v.tasks === undefined || help ? undefined : readTasks(v.tasks, v['tasks-format'] ?? 'auto');
  if (v['tasks-format'] !== undefined && v.tasks === undefined) throw new UsageError('--tasks-format needs --tasks');
  if (tasks && v.agents !== undefined && v.agents !== tasks.length) {
    throw new UsageError(`--agents is ${v.agents} but --tasks ${v.tasks ?? ''} holds ${tasks.length} tasks: give one task per agent (or leave --agents out)`);
  }
  if (v.agents === undefined && !tasks && !help) throw new UsageError('--agents N or --tasks FILE is required (see cfn run --help)');
  const agents = v.agents ?? tasks?.length ?? 1;
  if (agents > 100_000) throw new UsageError(`--tasks ${v.tasks ?? ''} holds ${agents} tasks, more than 100000 agents`);
  if (v.objective !== undefined && v.objective.includes('\0')) throw new UsageError('--objective must not contain a NUL byte');
  if (v.shard && v.shard.count > agents)
    throw new UsageError(`--shard ${v.shard.index}/${v.shard.count}: ${agents} agents cannot make ${v.shard.count} shards (at most one shard per agent)`);
  const range = v.shard ? shardRanges(agents, v.shard.count)[v.shard.index] : undefined;
  const indexRange = range ? { start: range.start, end: range.end } : { start: 0, end: agents };
  if (v.version !== undefined && v['rollout-percentage'] !== undefined) {
    throw new UsageError('give either --version or --rollout-percentage, not both (--version decides alone)');
  }

  return {
    agents,
    shard: v.shard,
    indexRange,
    agentCommand,
    objective: v.objective ?? DEFAULT_OBJECTIVE,
    tasks,
    timeoutSeconds: v.timeout ?? DEFAULTS.timeoutSeconds,
    agentTimeoutSeconds: v['agent-timeout'] ?? DEFAULTS.agentTimeoutSeconds,
    retries: v.retries ?? DEFAULTS.retries,
    noRetryExitCodes: v['no-retry-exit-codes'] ?? [],
    concurrency: Math.min(v.concurrency ?? DEFAULTS.concurrency, indexRange.end - indexRange.start),
    shmPath: v['shm-path'],
    minDelivery: v['min-delivery'] ?? DEFAULTS.minDelivery,
    maxOutputBytes: v['max-output'] ?? DEFAULTS.maxOutputBytes,
    json: v.json ?? false,
    resultsFile: v.results,
    swarmId: v['swarm-id'] ?? generateId('run'),
    version: v.version,
    rolloutPercentage: v['rollout-percentage'],
    configFile: v.config,
    noFallback: v['no-fallback'] ?? false,
    memoryPath: v['memory-path'],
    help,
  };
}
