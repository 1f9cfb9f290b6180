// Typed errors of the Kubernetes-client layer: every failure is either worth
// retrying later (conflicts, throttling, server and network trouble) or
// permanent (the request itself is wrong), so controllers never guess.
import { z } from 'zod';

const statusBody = z.looseObject({
  kind: z.literal('Status').optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().optional(),
  details: z
    .looseObject({ causes: z.array(z.looseObject({ reason: z.string().optional(), field: z.string().optional(), message: z.string().optional() })).optional() })
    .optional(),
});

export class KubeApiError extends Error {
  readonly retryable: boolean;

  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
    /** A cause the API server named (details.causes[].reason), e.g. NamespaceTerminating. */
    readonly apiCause?: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
    // 403 too: a quota or a missing RBAC rule is fixed by someone else, later.
    // Not a namespace being deleted: it only goes away (and its Swarms with it).
    this.retryable = (status === 403 && apiCause !== 'NamespaceTerminating') || status === 409 || status === 429 || status >= 500 || status === 0;
  }

  static fromResponse(status: number, body: string, method: string, path: string): KubeApiError {
    let parsed: z.infer<typeof statusBody> | undefined;
    try {
      const r = statusBody.safeParse(JSON.parse(body));
      if (r.success) parsed = r.data;
    } catch {
      // not JSON: keep the raw text below
    }
    const message = parsed?.message ?? (body.slice(0, 500) || `HTTP ${status}`);
    const cause = parsed?.details?.causes?.find((c) => c.reason)?.reason;
    return new KubeApiError(status, parsed?.reason ?? `HTTP${status}`, message, method, path, cause);
  }
}

/** A failure that retrying cannot fix: surfaced in status, not retried. */
export class PermanentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

/** A failure expected to go away: the reconcile is retried with backoff. */
export class RetryLaterError extends Error {
  constructor(
    message: string,
    readonly afterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RetryLaterError';
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeApiError && e.status === 409;
export const isAlreadyExists = (e: unknown): boolean => e instanceof KubeApiError && e.status === 409 && e.reason === 'AlreadyExists';
export const isGone = (e: unknown): boolean => e instanceof KubeApiError && e.status === 410;

/** Whether an error should be retried with backoff (unknown errors are: they are usually transient I/O). */
export function isRetryable(e: unknown): boolean {
  if (e instanceof PermanentError) return false;
  if (e instanceof RetryLaterError) return true;
  if (e instanceof KubeApiError) return e.retryable;
  return true;
}

export const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));
