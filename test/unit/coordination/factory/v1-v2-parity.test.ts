// The same small swarm on V1 and on V2 (both real, through the factory): the
// same responses field by field (durations aside) and the same common events
// (types.ts CoordinatorEvents) with the same payloads.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinatorFactory } from '../../../../operator/coordination/factory/coordinator-factory.js';
import { COMMON_COORDINATOR_EVENTS } from '../../../../operator/coordination/types.js';
import type {
  AgentInfo,
  AgentResponse,
  AgentState,
  CoordinationVersion,
  CoordinatorEvents,
  ObjectiveResult,
  ObjectiveSpec,
  RunStatus,
} from '../../../../operator/coordination/types.js';
import type { SwarmEvents } from '../../../../operator/coordination/v1/event-bus.js';
import type { BashCoordinatorEvents } from '../../../../operator/coordination/v2/bash-coordinator.js';

// Compile-time: V2's event map and V1's bus payloads carry the common events' payloads.
type V1Common = { [K in Exclude<keyof CoordinatorEvents, 'response' | 'status'>]: [SwarmEvents[K]] };
const v2Matches: BashCoordinatorEvents extends CoordinatorEvents ? true : false = true;
const v1Matches: V1Common extends Omit<CoordinatorEvents, 'response' | 'status'>
  ? Omit<CoordinatorEvents, 'response' | 'status'> extends V1Common
    ? true
    : false
  : false = true;

// Echoes what the contract gives it; fails on "fail*"; overflows --max-output on "big".
const AGENT = [
  'sh',
  '-c',
  [
    't=$(cat)',
    'case "$t" in fail*) echo "first line" >&2; echo "bad $AGENT_INDEX" >&2; exit 3;; big) head -c 200 /dev/zero | tr "\\0" x; exit 0;; esac',
    'printf "%s|%s|%s|%s|%s|%s\\n" "$t" "$AGENT_ID" "$AGENT_INDEX" "$CFN_ATTEMPT" "$CFN_AGENTS_TOTAL" "$CFN_OBJECTIVE"',
  ].join('\n'),
];

const TASKS = ['alpha', 'beta $(echo no) `x` "q"', 'fail-me', 'gamma\nline2', 'δ unicode ✓', 'big'];

function spec(id: string): ObjectiveSpec {
  return {
    id,
    description: 'parity objective',
    agents: TASKS.length,
    tasks: TASKS,
    agentCommand: AGENT,
    agentTimeoutSeconds: 10,
    retries: 1,
    concurrency: 3,
    timeoutSeconds: 30,
    maxOutputBytes: 64,
  };
}

interface Observed {
  result: ObjectiveResult;
  events: Record<string, unknown[][]>;
  /** What the coordinator answers about the objective's agents after the run. */
  queries: {
    agents: AgentInfo[] | undefined;
    response2: AgentResponse | undefined;
    state5: AgentState | undefined;
    unknownObjective: AgentInfo[] | undefined;
    outOfRange: AgentResponse | undefined;
  };
}

let dir: string;
let shm: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cfn-parity-'));
  shm = mkdtempSync('/dev/shm/cfn-test-parity-');
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(shm, { recursive: true, force: true });
});

async function runOn(version: CoordinationVersion): Promise<Observed> {
  const created = await CoordinatorFactory.create({
    id: 'parity',
    explicit: { version, source: 'test' },
    env: { PATH: process.env.PATH },
    coordination: { fallbackEnabled: false },
    v1: { memoryPath: join(dir, `${version}.sqlite`) },
    v2: { shmPath: shm },
  });
  const c = created.coordinator;
  expect(c.version).toBe(version);
  const events: Record<string, unknown[][]> = {};
  for (const name of COMMON_COORDINATOR_EVENTS) {
    events[name] = [];
    c.on(name, (...args: unknown[]) => events[name]?.push(args));
  }
  try {
    // The same objective id on both: payloads then compare as they are.
    const result = await c.executeObjective(spec('parity-swarm'));
    const queries = {
      agents: await c.listAgents('parity-swarm'),
      response2: await c.getAgentResponse('parity-swarm', 2),
      state5: await c.getAgentState('parity-swarm', 5),
      unknownObjective: await c.listAgents('no-such-objective'),
      outOfRange: await c.getAgentResponse('parity-swarm', TASKS.length),
    };
    return { result, events, queries };
  } finally {
    await c.stop();
  }
}

const withoutDuration = ({ durationMs: _d, ...rest }: AgentResponse) => rest;
const withoutTimes = ({ coordinationTime: _c, throughputAgentsPerSec: _t, ...rest }: RunStatus) => rest;
const byIndex = (a: AgentResponse, b: AgentResponse) => a.index - b.index;

function normalised(o: Observed) {
  const responsesOf = (name: string) =>
    (o.events[name] ?? [])
      .map(([p]) => (p as { objectiveId: string; response: AgentResponse }).response)
      .sort(byIndex)
      .map(withoutDuration);
  const [started] = o.events['objective:started'] ?? [];
  const [completed] = o.events['objective:completed'] ?? [];
  const { timestamp: _ts, ...startedPayload } = (started?.[0] ?? {}) as { timestamp: number };
  const completedPayload = completed?.[0] as { objectiveId: string; status: RunStatus } | undefined;
  const statuses = (o.events.status ?? []).map(([s]) => s as RunStatus);
  return {
    responses: o.result.responses.map(withoutDuration),
    status: withoutTimes(o.result.status),
    counts: Object.fromEntries(COMMON_COORDINATOR_EVENTS.filter((n) => n !== 'status').map((n) => [n, o.events[n]?.length])),
    started: startedPayload,
    completed: completedPayload && { objectiveId: completedPayload.objectiveId, status: withoutTimes(completedPayload.status) },
    agentCompleted: responsesOf('agent:completed'),
    agentFailed: responsesOf('agent:failed'),
    response: (o.events.response ?? [])
      .map(([r, id]) => [withoutDuration(r as AgentResponse), id])
      .sort((a, b) => (a[0] as AgentResponse).index - (b[0] as AgentResponse).index),
    finalStatus: statuses.length > 0 ? withoutTimes(statuses[statuses.length - 1] as RunStatus) : undefined,
    queries: { ...o.queries, response2: o.queries.response2 && withoutDuration(o.queries.response2) },
  };
}

describe('V1 and V2 on the same swarm', () => {
  it('give the same responses and the same common events, field by field (durations aside)', async () => {
    expect([v2Matches, v1Matches]).toEqual([true, true]);
    const v1 = normalised(await runOn('v1'));
    const v2 = normalised(await runOn('v2'));

    // What both must have produced, spelled out once.
    expect(v1.responses).toHaveLength(TASKS.length);
    expect(v1.responses[0]).toEqual({
      agentId: 'agent-0',
      index: 0,
      status: 'completed',
      exitCode: 0,
      attempts: 1,
      output: 'alpha|agent-0|0|1|6|parity objective\n',
      outputBytes: 37,
      outputTruncated: false,
      error: null,
    });
    expect(v1.responses[2]).toMatchObject({ status: 'failed', exitCode: 3, attempts: 2, output: '', error: 'bad 2' });
    expect(v1.responses[5]).toMatchObject({ status: 'completed', outputBytes: 200, outputTruncated: true, output: 'x'.repeat(64) });
    expect(v1.status).toEqual({ objectiveId: 'parity-swarm', status: 'completed', agents: { total: 6, completed: 5, failed: 1 }, deliveryRate: 83.3 });
    expect(v1.counts).toEqual({ 'objective:started': 1, 'agent:completed': 5, 'agent:failed': 1, 'objective:completed': 1, response: 6 });
    expect(v1.finalStatus).toEqual(v1.status);

    // Field by field, V2 against V1.
    for (let i = 0; i < TASKS.length; i++) expect({ index: i, ...v2.responses[i] }).toEqual({ index: i, ...v1.responses[i] });
    expect(v2.status).toEqual(v1.status);
    expect(v2.counts).toEqual(v1.counts);
    expect(v2.started).toEqual(v1.started);
    expect(v2.completed).toEqual(v1.completed);
    expect(v2.agentCompleted).toEqual(v1.agentCompleted);
    expect(v2.agentFailed).toEqual(v1.agentFailed);
    expect(v2.response).toEqual(v1.response);
    expect(v2.finalStatus?.agents).toEqual(v1.finalStatus?.agents);

    // The registered agents and their task results, asked after the run.
    expect(v1.queries.agents).toEqual(TASKS.map((_, i) => ({ agentId: `agent-${i}`, index: i, state: i === 2 ? 'failed' : 'completed' })));
    expect(v1.queries.response2).toEqual(v1.responses[2]);
    expect(v1.queries.state5).toBe('completed');
    expect(v1.queries.unknownObjective).toBeUndefined();
    expect(v1.queries.outOfRange).toBeUndefined();
    expect(v2.queries).toEqual(v1.queries);
  }, 60_000);
});
