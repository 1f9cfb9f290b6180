// JSON logs go to stderr so `cfn run --json` keeps stdout for its one result object.
import { pino } from 'pino';
import type { Logger, LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

const LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function resolveLogLevel(value: string | undefined, fallback: LevelWithSilent = 'warn'): LevelWithSilent {
  const v = value?.trim().toLowerCase();
  return LEVELS.find((l) => l === v) ?? fallback;
}

export interface LoggerOptions {
  name?: string;
  level?: LevelWithSilent;
  /** Destination file descriptor; default 2 (stderr). */
  fd?: number;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'cfn',
      level: options.level ?? resolveLogLevel(process.env.LOG_LEVEL),
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd: options.fd ?? 2, sync: true }),
  );
}
