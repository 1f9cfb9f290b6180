// What `cfn run` does with no objective or agent command: a short, realistic
// objective and an agent command present on every machine (`cat` echoes its
// task back, so each response is the task it received). The numbers come
// from the shipped config/v2-config.json.
import { loadV2Config } from '../config/v2-config.js';
import type { V2Config } from '../config/v2-config.js';
import { loadPerformanceLimits } from '../config/performance-limits.js';
import type { PerformanceLimits } from '../config/performance-limits.js';

export const DEFAULT_OBJECTIVE =
  'Review the swarm-operator repository for error handling gaps: list the three most important places where an ' +
  'external input (file, process exit, API response) is not validated, each with the file, the risk, and a one-line fix.\n';

export const DEFAULT_AGENT_COMMAND = 'cat';

/** config/v2-config.json as shipped: the defaults of the `cfn run` flags it covers. */
export const V2_DEFAULTS: V2Config = loadV2Config();

/** config/performance-limits.json as shipped: agents per coordinator, and V1's maximum. */
export const PERFORMANCE_LIMITS: PerformanceLimits = loadPerformanceLimits();

export const DEFAULTS = {
  timeoutSeconds: V2_DEFAULTS.timeoutSeconds,
  agentTimeoutSeconds: V2_DEFAULTS.agentTimeoutSeconds,
  retries: V2_DEFAULTS.retries,
  /** Concurrent agents; capped at the agent count. */
  concurrency: V2_DEFAULTS.concurrency,
  minDelivery: 100,
  maxOutputBytes: V2_DEFAULTS.maxOutputBytes,
} as const;
