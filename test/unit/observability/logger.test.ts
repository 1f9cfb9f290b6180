import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger, resolveLogLevel } from '../../../operator/observability/logger.js';

describe('logger', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp('/dev/shm/cfn-test-log-');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves LOG_LEVEL, falling back on bad values', () => {
    expect(resolveLogLevel('DEBUG')).toBe('debug');
    expect(resolveLogLevel(' silent ')).toBe('silent');
    expect(resolveLogLevel('loud')).toBe('warn');
    expect(resolveLogLevel(undefined, 'info')).toBe('info');
  });

  it('writes one JSON object per line to the given fd, filtered by level', () => {
    const path = join(dir, 'log');
    const fd = openSync(path, 'w');
    try {
      const log = createLogger({ name: 'x', level: 'info', fd });
      log.debug('hidden');
      log.info({ objectiveId: 's1' }, 'hello');
      log.error({ err: new Error('boom') }, 'bad');
      log.flush();
    } finally {
      closeSync(fd);
    }
    const lines = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ name: 'x', msg: 'hello', objectiveId: 's1', level: 30, pid: process.pid });
    expect(typeof lines[0]?.time).toBe('string');
    expect(lines[1]).toMatchObject({ msg: 'bad', err: { message: 'boom' } });
  });
});
