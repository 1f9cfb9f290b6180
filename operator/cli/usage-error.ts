// A bad command line: reported as one line on stderr, exit code 2.
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const EXIT = {
  ok: 0,
  /** The run failed, or completed fewer agents than --min-delivery asks. */
  runFailed: 1,
  usage: 2,
  /** No coordinator could start (for example the shm path is not writable). */
  unavailable: 3,
  /** `cfn operator` lost its Lease: it stopped all work; a fresh process campaigns again. */
  leadershipLost: 4,
  interrupted: 130,
} as const;
