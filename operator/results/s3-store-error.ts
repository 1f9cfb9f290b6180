// A failed S3 request, typed (s3-client.ts makes them). Apart from the
// client so that callers can recognise one without loading the S3 client.

export type S3FailureKind = 'unreachable' | 'no-such-bucket' | 'credentials-refused' | 'throttled' | 'server-error' | 'refused';

/** A failed S3 request, typed: retryable (try again later) or not (fix the spec or the Secret). */
export class S3StoreError extends Error {
  readonly retryable: boolean;

  constructor(
    readonly kind: S3FailureKind,
    message: string,
    readonly endpoint: string,
    readonly bucket: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'S3StoreError';
    this.retryable = kind === 'unreachable' || kind === 'throttled' || kind === 'server-error';
  }
}
