// Reads a JSON config file; a missing or unparsable file is a ConfigError
// naming the file, never a bare ENOENT or SyntaxError.
import { readFileSync } from 'node:fs';
import { ConfigError } from './config-error.js';

export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, '', code === 'ENOENT' ? 'file not found' : `cannot read: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(file, '', `not valid JSON: ${(err as Error).message}`);
  }
}

/** Like readJsonFile, but a missing file gives `undefined` (for optional files). */
export function readOptionalJsonFile(file: string): unknown {
  try {
    return readJsonFile(file);
  } catch (err) {
    if (err instanceof ConfigError && err.detail === 'file not found') return undefined;
    throw err;
  }
}
