// Where the CLI writes, injectable so tests run runCli in-process.
import type { Writable } from 'node:stream';

export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  /** Live progress is drawn only on an interactive terminal. */
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
  /** Interrupt signals to honour (default SIGINT, SIGTERM on this process). */
  signals: boolean;
}

export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    isTTY: Boolean(process.stderr.isTTY && process.stdout.isTTY),
    env: process.env,
    signals: true,
  };
}
