// A well-formed stored result for the results tests.
import type { StoredResult } from '../../../operator/results/stored-result.js';
import { agentResponse } from '../../helpers/agent-response.js';

export const record = (index: number, over: Partial<StoredResult> = {}): StoredResult => ({
  ...agentResponse(index, { durationMs: 12, output: `out ${index}\n`, outputBytes: `out ${index}\n`.length }),
  version: 'v2',
  pod: 'lint-v2-1',
  storedAt: new Date().toISOString(),
  ...over,
});
