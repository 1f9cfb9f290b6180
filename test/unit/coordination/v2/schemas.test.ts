import { describe, expect, it } from '@jest/globals';
import { agentResponseSchema, busMessageSchema, healthFileSchema, parseJsonWith, statusFileSchema } from '../../../../operator/coordination/v2/schemas.js';

const goodResponse = {
  agentId: 'agent-7',
  index: 7,
  status: 'completed',
  exitCode: 0,
  attempts: 1,
  durationMs: 12,
  output: 'hi',
  outputBytes: 2,
  outputTruncated: false,
  error: null,
};
const goodStatus = {
  objectiveId: 's1',
  status: 'running',
  indexRange: { start: 0, end: 500 },
  agents: { total: 500, completed: 120, failed: 2 },
  deliveryRate: 24.4,
  coordinationTime: 812,
  throughputAgentsPerSec: 150.2,
  startedAt: '2026-11-25T00:00:00.000Z',
  updatedAt: '2026-11-25T00:00:01.000Z',
  quarantined: 0,
};

describe('V2 schemas', () => {
  it('accept the contract examples', () => {
    expect(agentResponseSchema.safeParse(goodResponse).success).toBe(true);
    expect(statusFileSchema.safeParse(goodStatus).success).toBe(true);
    expect(
      busMessageSchema.safeParse({
        id: '1764030000123456-4242-17',
        type: 'result',
        from: 'agent-7',
        ts: 1764030000123456,
        body: { agentId: 'agent-7', index: 7, status: 'completed' },
      }).success,
    ).toBe(true);
    expect(
      busMessageSchema.safeParse({
        id: '1-2-3',
        type: 'batch',
        from: 'sub-0',
        ts: 1,
        body: { completed: [1, 2], failed: [0] },
      }).success,
    ).toBe(true);
    // A batch names its agents by index only, completed and failed apart.
    expect(
      busMessageSchema.safeParse({
        id: '1-2-3',
        type: 'batch',
        from: 'sub-0',
        ts: 1,
        body: { completed: [-1], failed: [] },
      }).success,
    ).toBe(false);
    expect(
      busMessageSchema.safeParse({
        id: '1-2-3',
        type: 'batch',
        from: 'sub-0',
        ts: 1,
        body: { results: [{ agentId: 'agent-0', index: 0, status: 'failed' }] },
      }).success,
    ).toBe(false);
    expect(healthFileSchema.safeParse({ healthy: false, reason: '/dev/shm/cfn not writable', checks: { shm: { ok: false, detail: 'x' } } }).success).toBe(true);
  });

  it('reject malformed responses', () => {
    const bad: unknown[] = [
      { ...goodResponse, agentId: 'agent-8' },
      { ...goodResponse, agentId: 'agent-07', index: 7 },
      { ...goodResponse, status: 'done' },
      { ...goodResponse, index: -1, agentId: 'agent--1' },
      { ...goodResponse, output: 5 },
      { ...goodResponse, outputTruncated: 'no' },
      { ...goodResponse, exitCode: 1.5 },
      (({ error: _e, ...rest }) => rest)(goodResponse),
      null,
      [],
      'x',
    ];
    for (const b of bad) expect(agentResponseSchema.safeParse(b).success).toBe(false);
  });

  it('reject malformed status and messages', () => {
    expect(statusFileSchema.safeParse({ ...goodStatus, status: 'weird' }).success).toBe(false);
    expect(statusFileSchema.safeParse({ ...goodStatus, deliveryRate: 101 }).success).toBe(false);
    expect(statusFileSchema.safeParse({ ...goodStatus, agents: { total: 1 } }).success).toBe(false);
    expect(busMessageSchema.safeParse({ id: 'abc', type: 'result', from: 'a', ts: 1, body: {} }).success).toBe(false);
    expect(busMessageSchema.safeParse({ id: '1-2-3', type: 'unknown', from: 'a', ts: 1, body: {} }).success).toBe(false);
    expect(healthFileSchema.safeParse({ reason: 'x' }).success).toBe(false);
  });

  it('parseJsonWith gives a one-line reason instead of throwing', () => {
    const notJson = parseJsonWith(agentResponseSchema, '{"agentId":');
    expect(notJson.ok).toBe(false);
    if (!notJson.ok) expect(notJson.reason).toMatch(/^not JSON/);
    const wrong = parseJsonWith(statusFileSchema, JSON.stringify({ ...goodStatus, status: 1 }));
    expect(wrong.ok).toBe(false);
    if (!wrong.ok) expect(wrong.reason).toMatch(/^status:/);
    const ok = parseJsonWith(agentResponseSchema, JSON.stringify(goodResponse));
    expect(ok).toEqual({ ok: true, value: goodResponse });
  });
});
