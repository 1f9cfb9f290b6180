import { describe, expect, it } from '@jest/globals';
import { isAlreadyExists, isRetryable, KubeApiError, PermanentError, RetryLaterError } from '../../../operator/k8s/errors.js';

const status = (code: number, reason: string, message: string) => JSON.stringify({ kind: 'Status', code, reason, message });

describe('typed API errors', () => {
  it('parses the API server Status body', () => {
    const e = KubeApiError.fromResponse(409, status(409, 'AlreadyExists', 'pods "x" already exists'), 'POST', '/api/v1/namespaces/a/pods');
    expect(e.message).toBe('pods "x" already exists');
    expect(isAlreadyExists(e)).toBe(true);
  });

  it('keeps a non-JSON body as the message', () => {
    expect(KubeApiError.fromResponse(502, 'bad gateway', 'GET', '/x').message).toBe('bad gateway');
  });

  it.each([
    [409, true],
    [429, true],
    [500, true],
    [503, true],
    [0, true],
    [403, true],
    [400, false],
    [404, false],
    [422, false],
  ])('HTTP %i retryable: %s', (code, retryable) => {
    expect(isRetryable(new KubeApiError(code, 'r', 'm', 'GET', '/'))).toBe(retryable);
  });

  it('regression: a create in a namespace being deleted is not retried (the operator retried V1 fallbacks there until the Swarm went)', () => {
    // The API server's answer, as seen in bench:operator's cleanup.
    const body = JSON.stringify({
      kind: 'Status',
      code: 403,
      reason: 'Forbidden',
      message: 'pods "s-1-v1-2" is forbidden: unable to create new content in namespace bench because it is being terminated',
      details: {
        name: 's-1-v1-2',
        kind: 'pods',
        causes: [{ reason: 'NamespaceTerminating', message: 'namespace bench is being terminated', field: 'metadata.namespace' }],
      },
    });
    const e = KubeApiError.fromResponse(403, body, 'POST', '/api/v1/namespaces/bench/pods');
    expect(e.apiCause).toBe('NamespaceTerminating');
    expect(isRetryable(e)).toBe(false);
    expect(isRetryable(KubeApiError.fromResponse(403, status(403, 'Forbidden', 'no RBAC yet'), 'POST', '/x'))).toBe(true);
  });

  it('classifies the operator own errors', () => {
    expect(isRetryable(new PermanentError('bad spec'))).toBe(false);
    expect(isRetryable(new RetryLaterError('policy missing', 5000))).toBe(true);
    expect(isRetryable(new Error('ECONNRESET'))).toBe(true);
  });
});
