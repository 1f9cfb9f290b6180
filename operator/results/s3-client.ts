// The S3 client of the results sink and source, and the one translation of
// its failures into S3StoreError: an unreachable endpoint, a missing bucket,
// refused credentials or another refusal, each naming endpoint and bucket.
import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { S3Credentials } from './s3-credentials.js';
import type { S3ResultsConfig } from './s3-location.js';
import { S3StoreError } from './s3-store-error.js';

export type S3Target = Pick<S3ResultsConfig, 'endpoint' | 'bucket' | 'region' | 'forcePathStyle'>;

export interface S3ClientOptions {
  /** Attempts per request, the SDK's standard retry (throttling, 5xx, network); default 3. */
  maxAttempts?: number;
  /** Connecting may take this long (default 5 s): a silent endpoint fails instead of hanging. */
  connectionTimeoutMs?: number;
  /** A whole request may take this long (default 30 s). */
  requestTimeoutMs?: number;
}

export function createS3Client(target: S3Target, credentials: S3Credentials, o: S3ClientOptions = {}): S3Client {
  return new S3Client({
    endpoint: target.endpoint,
    region: target.region,
    forcePathStyle: target.forcePathStyle,
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
    maxAttempts: o.maxAttempts ?? 3,
    requestHandler: { connectionTimeout: o.connectionTimeoutMs ?? 5000, requestTimeout: o.requestTimeoutMs ?? 30_000, throwOnRequestTimeout: true },
    // Checksums only where S3 requires them: many S3-compatible servers refuse
    // the flexible-checksum headers the SDK otherwise adds to every PUT.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED']);
// AWS's codes, and the one Versity's gateway gives an unknown access key id (with HTTP 404).
const CREDENTIAL_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'InvalidToken',
  'ExpiredToken',
  'AuthorizationHeaderMalformed',
  'XAdminUserNotFound',
]);
const THROTTLE_CODES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequests']);

const NETWORK_CODE_IN_TEXT = new RegExp(`\\b(${[...NETWORK_CODES].join('|')})\\b`);

/**
 * The network failure behind an error, if any: its errno code, its cause's,
 * or one named in its message (the SDK wraps an error from another realm,
 * e.g. under a test runner's VM, into a message-only Error).
 */
const networkFailureOf = (err: unknown): string | undefined => {
  let e: unknown = err;
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    const { code, name, message, cause } = e as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    if (name === 'TimeoutError') return 'timeout';
    const named = typeof message === 'string' ? NETWORK_CODE_IN_TEXT.exec(message) : null;
    if (named) return named[1];
    e = cause;
  }
  return undefined;
};

/** `what` says what was being done, e.g. `storing <key>` or `listing <prefix>`. */
export function toS3StoreError(err: unknown, target: Pick<S3Target, 'endpoint' | 'bucket'>, what: string): S3StoreError {
  if (err instanceof S3StoreError) return err;
  const { endpoint, bucket } = target;
  const at = `bucket "${bucket}" at ${endpoint}`;
  if (err instanceof S3ServiceException) {
    const status = err.$metadata.httpStatusCode ?? 0;
    const code = err.name;
    const detail = `${code}${err.message && err.message !== code && err.message !== 'UnknownError' ? `: ${err.message}` : ''} (HTTP ${status})`;
    if (code === 'NoSuchBucket')
      return new S3StoreError(
        'no-such-bucket',
        `S3 bucket "${bucket}" does not exist at ${endpoint} (${what}): create it, or fix spec.results.s3.bucket`,
        endpoint,
        bucket,
        { cause: err },
      );
    if (CREDENTIAL_CODES.has(code) || status === 401 || status === 403) {
      return new S3StoreError(
        'credentials-refused',
        `S3 credentials refused by ${endpoint} for bucket "${bucket}" (${what}): ${detail}; check the Secret of spec.results.s3.credentialsSecretRef and its permissions`,
        endpoint,
        bucket,
        { cause: err },
      );
    }
    if (THROTTLE_CODES.has(code) || status === 429 || status === 503)
      return new S3StoreError('throttled', `S3 ${at} is throttling (${what}): ${detail}`, endpoint, bucket, { cause: err });
    if (status >= 500) return new S3StoreError('server-error', `S3 ${at} failed (${what}): ${detail}`, endpoint, bucket, { cause: err });
    return new S3StoreError('refused', `S3 ${at} refused the request (${what}): ${detail}`, endpoint, bucket, { cause: err });
  }
  const errno = networkFailureOf(err);
  if (errno)
    return new S3StoreError('unreachable', `S3 endpoint ${endpoint} unreachable (${errno}) ${what} in bucket "${bucket}"`, endpoint, bucket, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  // Not an S3 answer at all (a proxy's HTML page, a cut connection): the endpoint is not serving S3.
  return new S3StoreError('unreachable', `S3 endpoint ${endpoint} did not answer as S3 (${message}) ${what} in bucket "${bucket}"`, endpoint, bucket, {
    cause: err,
  });
}
