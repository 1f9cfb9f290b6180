import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { CheckpointStoreCorruptionError, ResponseCheckpointStore } from '../../../../operator/coordination/v1/response-checkpoint-store.js';
import type { AgentResponse, ObjectiveSpec } from '../../../../operator/coordination/types.js';

const spec: ObjectiveSpec = {
  id: 'o1',
  description: 'd',
  agents: 3,
  agentCommand: ['true'],
  agentTimeoutSeconds: 1,
  retries: 0,
  concurrency: 1,
  timeoutSeconds: 10,
  maxOutputBytes: 10,
};

const response = (index: number, output = `out ${index}`): AgentResponse => ({
  agentId: `agent-${index}`,
  index,
  status: 'completed',
  exitCode: 0,
  attempts: 1,
  durationMs: 5,
  output,
  outputBytes: output.length,
  outputTruncated: false,
  error: null,
});

describe('ResponseCheckpointStore (SQLite file)', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfn-mem-'));
    file = join(dir, 'nested', '.claude-flow', 'memory.sqlite');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the file (and its directory, private) in WAL mode', () => {
    const m = new ResponseCheckpointStore(file);
    m.open();
    try {
      expect(existsSync(file)).toBe(true);
      expect(statSync(join(dir, 'nested', '.claude-flow')).mode & 0o777).toBe(0o700);
      const probe = new DatabaseSync(file, { readOnly: true });
      expect(probe.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
      probe.close();
    } finally {
      m.close();
    }
  });

  it('keeps objectives and responses across close and reopen; the first response wins', () => {
    const m = new ResponseCheckpointStore(file);
    m.open();
    expect(m.beginObjective({ ...spec, completedIndexes: [2] })).toMatchObject({ created: true });
    expect(m.recordResponse('o1', response(0))).toBe(true);
    expect(m.recordResponse('o1', response(0, 'second'))).toBe(false);
    m.kvSet('ns', 'k', 'v1');
    m.kvSet('ns', 'k', 'v2');
    m.close();

    const again = new ResponseCheckpointStore(file);
    again.open();
    try {
      expect(again.getObjective('o1')).toMatchObject({ status: 'running', spec: { id: 'o1', agents: 3, completedIndexes: [2] } });
      expect(again.listResponses('o1')).toEqual([response(0)]);
      expect(again.countResponses('o1')).toEqual({ completed: 1, failed: 0 });
      expect(again.kvGet('ns', 'k')).toBe('v2');
      expect(again.kvDelete('ns', 'k')).toBe(true);
      expect(again.kvGet('ns', 'k')).toBeUndefined();
      // A second begin merges completedIndexes and marks it running again.
      again.setObjectiveStatus('o1', 'stopped');
      expect(again.beginObjective({ ...spec, completedIndexes: [1] })).toMatchObject({ created: false, spec: { completedIndexes: [1, 2] } });
      expect(again.getObjective('o1')?.status).toBe('running');
      expect(again.listObjectiveIds()).toEqual(['o1']);
    } finally {
      again.close();
    }
  });

  it('rolls a failed transaction back completely', () => {
    const m = new ResponseCheckpointStore(file);
    m.open();
    try {
      m.beginObjective(spec);
      expect(() =>
        m.transaction(() => {
          m.recordResponse('o1', response(1));
          throw new Error('abort');
        }),
      ).toThrow('abort');
      expect(m.listResponses('o1')).toEqual([]);
    } finally {
      m.close();
    }
  });

  it('refuses a response row that does not parse, naming the file', () => {
    const m = new ResponseCheckpointStore(file);
    m.open();
    try {
      m.beginObjective(spec);
      const raw = new DatabaseSync(file);
      raw.prepare('INSERT INTO responses VALUES (?, ?, ?, ?, ?)').run('o1', 1, 'completed', '{"agentId":"agent-1"}', 0);
      raw.close();
      expect(() => m.listResponses('o1')).toThrow(CheckpointStoreCorruptionError);
      expect(() => m.listResponses('o1')).toThrow(file);
    } finally {
      m.close();
    }
  });

  it('says so when used before open()', () => {
    expect(() => new ResponseCheckpointStore(file).listResponses('x')).toThrow(/is not open/);
  });
});
