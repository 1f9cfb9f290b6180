// Typed events of a V1 swarm (and of the factory's fallback): one map, so a
// listener's payload type follows from the event name.
import { EventEmitter } from 'node:events';
import type { AgentResponse, RunStatus } from '../types.js';

export interface SwarmEvents {
  'objective:started': {
    objectiveId: string;
    agents: number;
    alreadyFinal: number;
    /** Agents a dead coordinator had left running for this objective, killed before resuming. */
    strayAgentsKilled: number;
    timestamp: number;
  };
  'agent:started': { objectiveId: string; agentId: string; index: number; attempt: number; timestamp: number };
  'agent:retry': { objectiveId: string; agentId: string; index: number; attempt: number; delayMs: number; error: string; timestamp: number };
  'agent:completed': { objectiveId: string; response: AgentResponse; timestamp: number };
  'agent:failed': { objectiveId: string; response: AgentResponse; timestamp: number };
  'objective:completed': { objectiveId: string; status: RunStatus; timestamp: number };
  'coordination:fallback': { from: 'v2'; to: 'v1'; reason: string; timestamp: number };
}

export type SwarmEventName = keyof SwarmEvents;

type EventArgs = { [K in SwarmEventName]: [SwarmEvents[K]] };

export class EventBus extends EventEmitter<EventArgs> {
  constructor() {
    super({ captureRejections: false });
    // 500 agents' worth of listeners is normal, not a leak.
    this.setMaxListeners(0);
  }

  /** Subscribes and returns the unsubscribe function. */
  subscribe<K extends SwarmEventName>(event: K, listener: (payload: SwarmEvents[K]) => void): () => void {
    const l = listener as (...args: EventArgs[K]) => void;
    // The generic EventEmitter's key type does not narrow through K; the cast is safe by the map.
    (this.on as (e: K, fn: (...args: EventArgs[K]) => void) => this)(event, l);
    return () => {
      (this.off as (e: K, fn: (...args: EventArgs[K]) => void) => this)(event, l);
    };
  }

  publish<K extends SwarmEventName>(event: K, payload: SwarmEvents[K]): void {
    (this.emit as (e: K, p: SwarmEvents[K]) => boolean)(event, payload);
  }
}
