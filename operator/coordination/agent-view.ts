// The agents of one objective as either coordinator sees them, so that
// getAgentState, listAgents and getAgentResponse answer alike on V1 and V2.
import type { AgentInfo, AgentResponse, AgentState } from './types.js';

export interface AgentView {
  total: number;
  state(index: number): AgentState;
  response(index: number): AgentResponse | undefined;
}

const inRange = (view: AgentView, index: number): boolean => Number.isInteger(index) && index >= 0 && index < view.total;

export function agentStateOf(view: AgentView | undefined, index: number): AgentState | undefined {
  return view && inRange(view, index) ? view.state(index) : undefined;
}

export function agentResponseOf(view: AgentView | undefined, index: number): AgentResponse | undefined {
  return view && inRange(view, index) ? view.response(index) : undefined;
}

export function listAgentsOf(view: AgentView | undefined): AgentInfo[] | undefined {
  if (!view) return undefined;
  return Array.from({ length: view.total }, (_, index) => ({ agentId: `agent-${index}`, index, state: view.state(index) }));
}
