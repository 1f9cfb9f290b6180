// Swarm and objective ids become directory names under the shm root, so they are
// validated as safe file names before anything touches the disk.
import { randomBytes } from 'node:crypto';

export const ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export class InvalidIdError extends Error {
  constructor(readonly id: string) {
    super(`invalid id ${JSON.stringify(id)}: must match ${ID_PATTERN.source} (lowercase letters, digits, '.', '_', '-'; 1-63 chars)`);
    this.name = 'InvalidIdError';
  }
}

export function isValidId(id: string): boolean {
  // '.' and '..' match the pattern's charset but are not usable directory names.
  return ID_PATTERN.test(id) && id !== '.' && id !== '..';
}

export function assertValidId(id: string): string {
  if (!isValidId(id)) throw new InvalidIdError(id);
  return id;
}

/** A fresh id like `swarm-m3k2x9-4f1a2b3c`: time-ordered prefix plus randomness. */
export function generateId(prefix = 'swarm'): string {
  const cleanPrefix =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9._-]/g, '-')
      .replace(/^[^a-z0-9]+/, '') || 'swarm';
  const id = `${cleanPrefix.slice(0, 40)}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  return assertValidId(id);
}
