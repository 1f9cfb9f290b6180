// Preflight of the V2 engine: find bash and the engine scripts, then run
// `health-monitor.sh preflight --json` and turn what it printed into a
// HealthReport with the precise reason when the engine cannot run.
import { access, constants, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import type { HealthReport } from '../types.js';
import { killGroupAndWait } from '../../util/proc.js';
import { lastLine } from './engine-process.js';
import { healthFileSchema, parseJsonWith } from './schemas.js';

/** The engine scripts a run needs. */
export const ENGINE_SCRIPTS = ['coordinator-cli.sh', 'health-monitor.sh'] as const;
const PREFLIGHT_TIMEOUT_MS = 30_000;

export class CoordinatorUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`V2 coordinator unavailable: ${reason}`);
    this.name = 'CoordinatorUnavailableError';
  }
}

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

export interface EngineLocation {
  /** The bash binary: a path, or a name looked up on env.PATH. */
  bashName: string;
  /** Directory holding the engine scripts. */
  bashDir: string;
  env: NodeJS.ProcessEnv;
}

/** The bash binary's path, once it and the engine scripts are usable; else CoordinatorUnavailableError with the precise reason. */
export async function locateEngine(where: EngineLocation): Promise<string> {
  const bash = await resolveExecutable(where.bashName, where.env.PATH);
  if (!bash) {
    throw new CoordinatorUnavailableError(
      where.bashName.includes('/')
        ? `bash not executable at ${where.bashName}`
        : `bash not found: no executable "${where.bashName}" on PATH=${where.env.PATH ?? '(unset)'}`,
    );
  }
  for (const name of ENGINE_SCRIPTS) {
    const script = join(where.bashDir, name);
    try {
      await access(script, constants.R_OK);
    } catch {
      throw new CoordinatorUnavailableError(`engine script missing: ${script}`);
    }
  }
  return bash;
}

/** What a finished `health-monitor.sh preflight --json` said, as a report. */
export function preflightReport(run: { exitCode: number | undefined; stdout: string; stderr: string; timedOut: boolean }): HealthReport {
  const stdout = run.stdout.trim();
  const parsed = stdout === '' ? undefined : parseJsonWith(healthFileSchema, stdout.split('\n').pop() as string);
  if (parsed?.ok) {
    const h = parsed.value;
    const checks = h.checks ?? {};
    const healthy = h.healthy && run.exitCode === 0;
    const failing = Object.entries(checks).find(([, c]) => !c.ok);
    const reason = healthy
      ? undefined
      : (h.reason ?? (failing ? `${failing[0]}: ${failing[1].detail}` : undefined) ?? (lastLine(run.stderr) || `preflight exited ${run.exitCode}`));
    return reason === undefined ? { healthy, checks } : { healthy, reason, checks };
  }
  const why = run.timedOut
    ? `preflight timed out after ${PREFLIGHT_TIMEOUT_MS / 1000} s`
    : lastLine(run.stderr) ||
      (parsed && !parsed.ok ? `preflight printed invalid JSON (${parsed.reason})` : `preflight exited ${run.exitCode} without a report`);
  return { healthy: false, reason: why, checks: { preflight: { ok: false, detail: why } } };
}

const unhealthy = (reason: string, check: string, detail: string): HealthReport => ({ healthy: false, reason, checks: { [check]: { ok: false, detail } } });

/** Runs preflights; cancel() ends those in flight (each in its own process group) and any that begins before it returns. */
export class EnginePreflight {
  private readonly running = new Set<ResultPromise>();
  /** Bumped by cancel(): a preflight that began before it does not spawn afterwards. */
  private epoch = 0;

  constructor(private readonly where: EngineLocation & { shmPath: string }) {}

  /** The report of one preflight; never throws. */
  async run(): Promise<HealthReport> {
    const epoch = this.epoch;
    let bash: string;
    try {
      bash = await locateEngine(this.where);
    } catch (err) {
      const reason = err instanceof CoordinatorUnavailableError ? err.reason : (err as Error).message;
      return unhealthy(reason, 'engine', reason);
    }
    if (epoch !== this.epoch) return unhealthy('stopped during preflight', 'preflight', 'stopped');
    const child = execa(bash, [join(this.where.bashDir, 'health-monitor.sh'), 'preflight', '--json', '--shm-path', this.where.shmPath], {
      env: this.where.env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: PREFLIGHT_TIMEOUT_MS,
      // Own process group: cancelling kills whatever the preflight started too.
      detached: true,
    });
    this.running.add(child);
    let result: Awaited<typeof child>;
    try {
      result = await child;
    } finally {
      this.running.delete(child);
      if (child.pid !== undefined) await killGroupAndWait(child.pid);
    }
    if (epoch !== this.epoch) return unhealthy('stopped during preflight', 'preflight', 'stopped');
    return preflightReport({
      exitCode: result.exitCode,
      stdout: String(result.stdout ?? ''),
      stderr: String(result.stderr ?? ''),
      timedOut: result.timedOut,
    });
  }

  /** Ends every preflight in flight and waits until its processes are gone. */
  async cancel(): Promise<void> {
    this.epoch += 1;
    await Promise.all(
      [...this.running].map(async (p) => {
        if (p.pid !== undefined) await killGroupAndWait(p.pid);
        await p.then(
          () => undefined,
          () => undefined,
        );
      }),
    );
  }
}
