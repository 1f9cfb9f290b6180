// The agents of one objective as either coordinator sees them, so that
// getAgentState, listAgents and getAgentResponse answer alike on V1 and V2.
import { inRange as inIndexRange } from './index-range.js';
import type { IndexRange } from './index-range.js';
import type { AgentInfo, AgentResponse, AgentState } from './types.js';

export interface AgentView {
  /** The agents the run holds (its index range; all of them without one). */
  range: IndexRange;
  state(index: number): AgentState;
  response(index: number): AgentResponse | undefined;
}

const inRange = (view: AgentView, index: number): boolean => inIndexRange(view.range, index);

export function agentStateOf(view: AgentView | undefined, index: number): AgentState | undefined {
  return view && inRange(view, index) ? view.state(index) : undefined;
}

export function agentResponseOf(view: AgentView | undefined, index: number): AgentResponse | undefined {
  return view && inRange(view, index) ? view.response(index) : undefined;
}

export function listAgentsOf(view: AgentView | undefined): AgentInfo[] | undefined {
  if (!view) return undefined;
  const { start, end } = view.range;
  return Array.from({ length: end - start }, (_, k) => ({ agentId: `agent-${start + k}`, index: start + k, state: view.state(start + k) }));
}
