// One ObjectiveSpec for the coordinator tests: a unique id, `cat` agents,
// short timeouts; each test overrides what it is about.
import type { ObjectiveSpec } from '../../operator/coordination/types.js';

let seq = 0;

export function objectiveSpec(overrides: Partial<ObjectiveSpec> = {}): ObjectiveSpec {
  seq += 1;
  return {
    id: `t${process.pid}-${seq}`,
    description: 'objective text\n',
    agents: 1,
    agentCommand: ['cat'],
    agentTimeoutSeconds: 30,
    retries: 0,
    concurrency: 4,
    timeoutSeconds: 60,
    maxOutputBytes: 65536,
    ...overrides,
  };
}
