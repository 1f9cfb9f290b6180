// The contract both coordinators implement (V2 bash, V1 TypeScript), so that a
// swarm's results compare one to one whichever path ran it.
import type { EventEmitter } from 'node:events';

export type CoordinationVersion = 'v1' | 'v2';

/** One agent's answer: the same shape from V1 and V2 (see docs/agent-contract.md). */
export interface AgentResponse {
  agentId: string;
  index: number;
  status: 'completed' | 'failed';
  exitCode: number | null;
  attempts: number;
  durationMs: number;
  output: string;
  outputBytes: number;
  outputTruncated: boolean;
  error: string | null;
}

export type AgentState = 'pending' | 'running' | 'completed' | 'failed';

/** One agent an objective registered (agents 0..N-1, ids `agent-<i>`), with its state. */
export interface AgentInfo {
  agentId: string;
  index: number;
  state: AgentState;
}

export type SwarmRunState = 'pending' | 'running' | 'completed' | 'failed' | 'timeout' | 'stopped';

/** One objective run's status, as a coordinator reports it (the Swarm resource's status is api/swarm.ts SwarmResourceStatus). */
export interface RunStatus {
  objectiveId: string;
  /**
   * How the run ended: `completed` means every agent's final response is in
   * (completed or failed), not that the work succeeded: deliveryRate says how
   * much did, and the caller's rule (`cfn run --min-delivery`, a Swarm's
   * successPolicy) decides success.
   */
  status: SwarmRunState;
  agents: { total: number; completed: number; failed: number };
  /** Completed agents / total, in percent 0..100 (truncated to one decimal); a failed agent is not delivered. */
  deliveryRate: number;
  /** Milliseconds from start to the last response (or now, while running). */
  coordinationTime: number;
  /** Agents this run completed per second of coordinationTime. */
  throughputAgentsPerSec: number;
}

/** What to run: an objective fanned out to N agents. */
export interface ObjectiveSpec {
  /** Also the swarm id on disk: validated as a file name (see ids). */
  id: string;
  description: string;
  agents: number;
  /** Per-agent task text; agent i gets tasks[i] or, when absent, the description. */
  tasks?: readonly string[];
  /** Per-agent environment: agent i also gets taskEnv[i] (never an engine name: see tasks/task-list.ts). */
  taskEnv?: readonly (Readonly<Record<string, string>> | undefined)[];
  /** argv of the agent command; never passed through a shell. */
  agentCommand: readonly string[];
  agentTimeoutSeconds: number;
  retries: number;
  concurrency: number;
  /** Overall deadline for the objective. */
  timeoutSeconds: number;
  maxOutputBytes: number;
  /**
   * The agents this run runs when it is one shard of a swarm: indexes
   * start..end-1 of `agents` (end exclusive). Responses, tasks[i], taskEnv[i]
   * and AGENT_INDEX keep the swarm's indexes; the run's status counts the
   * range only (its total is end - start). completedIndexes and failedIndexes
   * lie inside it. Default: all of 0..agents-1.
   */
  indexRange?: { start: number; end: number };
  /** Agent indexes completed by an earlier run: counted as completed, not re-run. */
  completedIndexes?: readonly number[];
  /** Agent indexes that failed finally in an earlier run: counted as failed, not re-run (a final answer is never re-run). */
  failedIndexes?: readonly number[];
  /** Exit codes (1-255) that end an agent at once: that attempt is final, never retried. */
  noRetryExitCodes?: readonly number[];
}

export interface HealthReport {
  healthy: boolean;
  /** The precise cause when unhealthy, for example `/dev/shm/cfn not writable`. */
  reason?: string;
  checks: Record<string, { ok: boolean; detail: string }>;
}

export interface Capabilities {
  version: CoordinationVersion;
  maxAgents: number;
  persistentResume: boolean;
}

export interface ObjectiveResult {
  status: RunStatus;
  responses: AgentResponse[];
  /**
   * After stop(): agents that were running when it came. They delivered
   * nothing, so the next coordinator of the objective runs them again.
   */
  interruptedIndexes?: number[];
}

/**
 * Events both coordinators emit, with the same payloads, so a listener works on
 * either version. V1 adds `agent:started` and `agent:retry` (it sees attempts
 * start; V2's engine reports only results); V2 adds `quarantine` (malformed
 * engine files). `status` is a running status after a change, then the final one.
 */
export interface CoordinatorEvents {
  /** alreadyFinal: agents whose final response an earlier run had (completed or failed), not run again. */
  'objective:started': [{ objectiveId: string; agents: number; alreadyFinal: number; strayAgentsKilled: number; timestamp: number }];
  'agent:completed': [{ objectiveId: string; response: AgentResponse; timestamp: number }];
  'agent:failed': [{ objectiveId: string; response: AgentResponse; timestamp: number }];
  'objective:completed': [{ objectiveId: string; status: RunStatus; timestamp: number }];
  /** Every response as it arrives, with the objective id. */
  response: [AgentResponse, string];
  status: [RunStatus];
}

export const COMMON_COORDINATOR_EVENTS = [
  'objective:started',
  'agent:completed',
  'agent:failed',
  'objective:completed',
  'response',
  'status',
] as const satisfies ReadonlyArray<keyof CoordinatorEvents>;

/** Lifecycle, agents, objectives, status and health, for either version. */
export interface Coordinator extends EventEmitter {
  readonly version: CoordinationVersion;
  capabilities(): Capabilities;
  /** Prepares the runtime; rejects with the precise reason when it cannot run. */
  start(): Promise<void>;
  /** Stops everything it started: no process, timer, handle or file left. */
  stop(): Promise<void>;
  healthCheck(): Promise<HealthReport>;
  /** Runs an objective to completion (or deadline) and returns every response. */
  executeObjective(spec: ObjectiveSpec): Promise<ObjectiveResult>;
  getSwarmStatus(objectiveId: string): Promise<RunStatus | undefined>;
  getAgentState(objectiveId: string, index: number): Promise<AgentState | undefined>;
  /** Every agent the objective registered, by index; undefined for an unknown objective. */
  listAgents(objectiveId: string): Promise<AgentInfo[] | undefined>;
  /** An agent's task result: its response once delivered. */
  getAgentResponse(objectiveId: string, index: number): Promise<AgentResponse | undefined>;
}
