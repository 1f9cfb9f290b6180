// engine-result.ts: what an engine run's exit code, status.json and responses
// make of the objective's result, and which agents a stop cut short.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentResponse } from '../../../../operator/coordination/types.js';
import { CoordinatorUnavailableError } from '../../../../operator/coordination/v2/engine-preflight.js';
import { ENGINE_EXIT, EngineError, interruptedAgents, runResult, statusFromResponses } from '../../../../operator/coordination/v2/engine-result.js';
import type { EngineRun } from '../../../../operator/coordination/v2/engine-result.js';
import type { StatusFile } from '../../../../operator/coordination/v2/schemas.js';
import { objectiveSpec } from '../../../helpers/objective-spec.js';

const response = (index: number, status: 'completed' | 'failed' = 'completed'): AgentResponse => ({
  agentId: `agent-${index}`,
  index,
  status,
  exitCode: status === 'completed' ? 0 : 1,
  attempts: 1,
  durationMs: 5,
  output: '',
  outputBytes: 0,
  outputTruncated: false,
  error: null,
});

const fileStatus = (status: StatusFile['status'], completed: number, failed: number): StatusFile => ({
  objectiveId: 'x',
  status,
  agents: { total: 4, completed, failed },
  deliveryRate: completed * 25,
  coordinationTime: 1234,
  throughputAgentsPerSec: 3.2,
});

/** A run of 4 agents: 3 completed, 1 failed, exit 0, no status.json; `over` changes what the case is about. */
const run = (over: Partial<EngineRun> = {}): EngineRun => ({
  spec: objectiveSpec({ agents: 4 }),
  responses: [response(0), response(1), response(2), response(3, 'failed')],
  fileStatus: undefined,
  exitCode: ENGINE_EXIT.ok,
  stopping: false,
  elapsedMs: 1000,
  stderrTail: '',
  ...over,
});

describe('runResult', () => {
  it('exit 0 with a final status.json: the status is the file', () => {
    const { result, engineFailed } = runResult(run({ fileStatus: fileStatus('completed', 3, 1) }));
    expect(engineFailed).toBe(false);
    expect(result.status).toEqual({
      objectiveId: 'x',
      status: 'completed',
      agents: { total: 4, completed: 3, failed: 1 },
      deliveryRate: 75,
      coordinationTime: 1234,
      throughputAgentsPerSec: 3.2,
    });
    expect(result.responses).toHaveLength(4);
  });

  it('exit 0 without status.json (or one still "running"): completed when every agent is final, from the responses', () => {
    for (const fs of [undefined, fileStatus('running', 1, 0)]) {
      const { result } = runResult(run({ fileStatus: fs }));
      expect(result.status).toMatchObject({ status: 'completed', agents: { total: 4, completed: 3, failed: 1 }, deliveryRate: 75 });
    }
    const short = runResult(run({ responses: [response(0)] }));
    expect(short.result.status).toMatchObject({ status: 'failed', agents: { total: 4, completed: 1, failed: 0 } });
  });

  it('counts the agents final in an earlier run', () => {
    const spec = objectiveSpec({ agents: 4, completedIndexes: [0, 1], failedIndexes: [2] });
    const { result } = runResult(run({ spec, responses: [response(3)] }));
    expect(result.status).toMatchObject({ status: 'completed', agents: { total: 4, completed: 3, failed: 1 }, deliveryRate: 75 });
    expect(statusFromResponses(spec, [response(3)], 'running', 1000).throughputAgentsPerSec).toBe(1);
  });

  it('exit 4 (deadline): timeout, with or without status.json', () => {
    expect(runResult(run({ exitCode: ENGINE_EXIT.deadline, fileStatus: fileStatus('completed', 3, 1) })).result.status.status).toBe('timeout');
    expect(runResult(run({ exitCode: ENGINE_EXIT.deadline })).result.status.status).toBe('timeout');
  });

  it('exit 3 is the engine preflight: CoordinatorUnavailableError with its last stderr line', () => {
    expect(() => runResult(run({ exitCode: ENGINE_EXIT.preflight, stderrTail: 'noise\n/dev/shm is not tmpfs\n\n' }))).toThrow(
      new CoordinatorUnavailableError('/dev/shm is not tmpfs'),
    );
    expect(() => runResult(run({ exitCode: ENGINE_EXIT.preflight }))).toThrow('engine preflight failed');
  });

  it('exit 2 is a usage error: EngineError with the exit code', () => {
    let err: unknown;
    try {
      runResult(run({ exitCode: ENGINE_EXIT.usage, stderrTail: 'coordinator-cli: --agents must be >= 1\n' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).exitCode).toBe(2);
    expect((err as EngineError).message).toBe('engine rejected its arguments: coordinator-cli: --agents must be >= 1');
  });

  it('any other end (exit 1, a signal) is the engine failing: status failed, engineFailed', () => {
    for (const exitCode of [ENGINE_EXIT.engineFailure, ENGINE_EXIT.sigterm, undefined]) {
      const { result, engineFailed } = runResult(run({ exitCode }));
      expect(engineFailed).toBe(true);
      expect(result.status).toMatchObject({ status: 'failed', agents: { completed: 3, failed: 1 } });
    }
    const withFile = runResult(run({ exitCode: 1, fileStatus: fileStatus('completed', 3, 1) }));
    expect(withFile.result.status).toMatchObject({ status: 'failed', coordinationTime: 1234 });
  });

  it('a stopped run is "stopped" whatever the exit code, never an engine failure', () => {
    for (const exitCode of [undefined, ENGINE_EXIT.sigterm, ENGINE_EXIT.preflight]) {
      const { result, engineFailed } = runResult(run({ exitCode, stopping: true }));
      expect(engineFailed).toBe(false);
      expect(result.status.status).toBe('stopped');
    }
  });
});

describe('interruptedAgents', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cfn-interrupted-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('agents of the range with an output file in work/ and no response, once each, in order', async () => {
    await mkdir(join(root, 'work'));
    for (const name of ['agent-7.100.out', 'agent-3.12.out', 'agent-3.13.out', 'agent-5.1.out', 'agent-20.1.out', 'agent-03.1.out', 'agent-4.out', 'notes'])
      await writeFile(join(root, 'work', name), '');
    expect(await interruptedAgents(root, { start: 0, end: 10 }, new Set([5]))).toEqual([3, 7]);
    expect(await interruptedAgents(root, { start: 4, end: 8 }, new Set())).toEqual([5, 7]);
  });

  it('no work/ directory: none', async () => {
    expect(await interruptedAgents(join(root, 'missing'), { start: 0, end: 10 }, new Set())).toEqual([]);
  });
});
