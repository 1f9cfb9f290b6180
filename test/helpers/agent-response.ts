// An agent's final response as an engine reports it (completed, exit 0, no
// output unless OVER says otherwise), for tests that feed a status publisher,
// a coordinator or a store.
import type { AgentResponse } from '../../operator/coordination/types.js';

export const agentResponse = (index: number, over: Partial<AgentResponse> = {}): AgentResponse => ({
  agentId: `agent-${index}`,
  index,
  status: 'completed',
  exitCode: 0,
  attempts: 1,
  durationMs: 1,
  output: '',
  outputBytes: 0,
  outputTruncated: false,
  error: null,
  ...over,
});
