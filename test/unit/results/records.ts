// A well-formed stored result for the results tests.
import type { StoredResult } from '../../../operator/results/stored-result.js';

export const record = (index: number, over: Partial<StoredResult> = {}): StoredResult => ({
  agentId: `agent-${index}`,
  index,
  status: 'completed',
  exitCode: 0,
  attempts: 1,
  durationMs: 12,
  output: `out ${index}\n`,
  outputBytes: `out ${index}\n`.length,
  outputTruncated: false,
  error: null,
  version: 'v2',
  pod: 'lint-v2-1',
  storedAt: new Date().toISOString(),
  ...over,
});
