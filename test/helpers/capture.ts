// In-process CLI streams: runCli and the commands write into these, and a test
// reads what they wrote.
import { Writable } from 'node:stream';
import type { CliIo } from '../../operator/cli/io.js';

/** A writable stream that keeps everything written to it in `text`. */
export class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

/** A CliIo with `env` whose stdout and stderr are captured (`out`, `err`); no signal handlers. */
export function captureIo(env: NodeJS.ProcessEnv, isTTY = false): CliIo & { out: Capture; err: Capture } {
  const out = new Capture();
  const err = new Capture();
  return { stdout: out, stderr: err, out, err, isTTY, env, signals: false };
}
