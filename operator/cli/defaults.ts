// What `cfn run` does with no objective or agent command: a short, realistic
// objective and an agent command present on every machine (`cat` echoes its
// task back, so each response is the task it received).

export const DEFAULT_OBJECTIVE =
  'Review the swarm-operator repository for error handling gaps: list the three most important places where an ' +
  'external input (file, process exit, API response) is not validated, each with the file, the risk, and a one-line fix.\n';

export const DEFAULT_AGENT_COMMAND = 'cat';

export const DEFAULTS = {
  topology: 'auto',
  timeoutSeconds: 300,
  agentTimeoutSeconds: 60,
  retries: 1,
  /** Concurrent agents; capped at the agent count. */
  concurrency: 64,
  minDelivery: 100,
  maxOutputBytes: 65536,
} as const;

/**
 * `--topology auto`: flat up to this many agents, hybrid above; the same rule as
 * `coordinator-cli.sh --topology auto`, so "auto" means one thing everywhere.
 */
export const AUTO_FLAT_MAX_AGENTS = 300;
