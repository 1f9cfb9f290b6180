// How a failed S3 request reads: kind, retryable, and a message naming the
// endpoint and bucket (the errors are built the way the SDK builds them; the
// integration test gets the same from a real server).
import { describe, expect, it } from '@jest/globals';
import { NoSuchBucket, S3ServiceException } from '@aws-sdk/client-s3';
import { toS3StoreError } from '../../../operator/results/s3-client.js';
import { S3StoreError } from '../../../operator/results/s3-store-error.js';

const target = { endpoint: 'http://s3.storage:9000', bucket: 'results' };
const serviceError = (name: string, status: number, message = name) =>
  new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });

describe('toS3StoreError', () => {
  it('network failures: unreachable, retryable, also when the SDK wrapped them into a message', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.9:9000'), { code: 'ECONNREFUSED' });
    for (const err of [refused, new Error('AWS SDK error wrapper for Error: connect ECONNREFUSED 10.0.0.9:9000'), new Error('x', { cause: refused })]) {
      const e = toS3StoreError(err, target, 'storing a/0.json');
      expect(e.kind).toBe('unreachable');
      expect(e.retryable).toBe(true);
      expect(e.message).toBe('S3 endpoint http://s3.storage:9000 unreachable (ECONNREFUSED) storing a/0.json in bucket "results"');
    }
    expect(toS3StoreError(Object.assign(new Error('getaddrinfo ENOTFOUND s3.storage'), { code: 'ENOTFOUND' }), target, 'listing a/').message).toContain(
      'unreachable (ENOTFOUND)',
    );
    const timeout = Object.assign(new Error('Connection timed out after 5000 ms'), { name: 'TimeoutError' });
    expect(toS3StoreError(timeout, target, 'listing a/').message).toBe(
      'S3 endpoint http://s3.storage:9000 unreachable (timeout) listing a/ in bucket "results"',
    );
  });

  it('a missing bucket and refused credentials are permanent and say what to fix', () => {
    const nb = toS3StoreError(
      new NoSuchBucket({ $metadata: { httpStatusCode: 404 }, message: 'The specified bucket does not exist' }),
      target,
      'storing a/0.json',
    );
    expect(nb).toMatchObject({ kind: 'no-such-bucket', retryable: false, endpoint: target.endpoint, bucket: 'results' });
    expect(nb.message).toBe('S3 bucket "results" does not exist at http://s3.storage:9000 (storing a/0.json): create it, or fix spec.results.s3.bucket');
    for (const [code, status] of [
      ['InvalidAccessKeyId', 403],
      ['SignatureDoesNotMatch', 403],
      ['AccessDenied', 403],
      ['XAdminUserNotFound', 404],
    ] as const) {
      const e = toS3StoreError(serviceError(code, status, 'no'), target, 'storing a/0.json');
      expect(e.kind).toBe('credentials-refused');
      expect(e.retryable).toBe(false);
      expect(e.message).toBe(
        `S3 credentials refused by http://s3.storage:9000 for bucket "results" (storing a/0.json): ${code}: no (HTTP ${status}); check the Secret of spec.results.s3.credentialsSecretRef and its permissions`,
      );
    }
  });

  it('throttling and server errors are retryable; other refusals are not', () => {
    expect(toS3StoreError(serviceError('SlowDown', 503), target, 'x')).toMatchObject({ kind: 'throttled', retryable: true });
    expect(toS3StoreError(serviceError('InternalError', 500), target, 'x')).toMatchObject({ kind: 'server-error', retryable: true });
    const bad = toS3StoreError(serviceError('EntityTooLarge', 400, 'Your proposed upload exceeds the maximum allowed size'), target, 'storing a/0.json');
    expect(bad).toMatchObject({ kind: 'refused', retryable: false });
    expect(bad.message).toBe(
      'S3 bucket "results" at http://s3.storage:9000 refused the request (storing a/0.json): EntityTooLarge: Your proposed upload exceeds the maximum allowed size (HTTP 400)',
    );
  });

  it('an S3StoreError passes through unchanged', () => {
    const e = new S3StoreError('unreachable', 'm', target.endpoint, target.bucket);
    expect(toS3StoreError(e, target, 'x')).toBe(e);
  });
});
