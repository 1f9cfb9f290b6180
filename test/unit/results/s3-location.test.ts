import { describe, expect, it } from '@jest/globals';
import { swarmSpec } from '../../../operator/api/swarm.js';
import { s3Location, s3ObjectKey, s3RunPrefix } from '../../../operator/results/s3-location.js';
import { indexOfKey } from '../../../operator/results/stored-result.js';

const scope = { namespace: 'team-a', name: 'lint', uid: '5d0c7c1e-0b8e-4c1e-9d6e-0c8a3b9f1a2b' };

describe('S3 keys and location', () => {
  it('puts the one layout under the prefix: <prefix><namespace>/<name>/<uid>/<index>.json', () => {
    expect(s3ObjectKey('swarms/', scope, 0)).toBe(`swarms/team-a/lint/${scope.uid}/0.json`);
    expect(s3ObjectKey('a/b/', scope, 499)).toBe(`a/b/team-a/lint/${scope.uid}/499.json`);
    expect(s3ObjectKey(undefined, scope, 7)).toBe(`team-a/lint/${scope.uid}/7.json`);
    expect(s3ObjectKey('', scope, 7)).toBe(`team-a/lint/${scope.uid}/7.json`);
    expect(s3RunPrefix('swarms/', scope)).toBe(`swarms/team-a/lint/${scope.uid}/`);
  });

  it('a key names its index back, and nothing else is a record', () => {
    const key = s3ObjectKey('swarms/', scope, 1234);
    expect(indexOfKey(key.slice(s3RunPrefix('swarms/', scope).length))).toBe(1234);
    for (const base of ['007.json', '1.json.tmp', 'x.json', '-1.json', '1.JSON', 'sub/1.json']) expect(indexOfKey(base)).toBeUndefined();
  });

  it('status.results.location is s3://<bucket>/<prefix><namespace>/<name>/<uid>/', () => {
    expect(s3Location({ bucket: 'results', prefix: 'swarms/' }, scope)).toBe(`s3://results/swarms/team-a/lint/${scope.uid}/`);
    expect(s3Location({ bucket: 'results' }, scope)).toBe(`s3://results/team-a/lint/${scope.uid}/`);
  });

  it('the spec defaults what the sink needs: region, path style, key names; a bad prefix or endpoint is refused naming the field', () => {
    const parsed = swarmSpec.parse({
      objective: 'o',
      agent: { command: ['cat'] },
      results: { type: 's3', s3: { endpoint: 'http://10.244.0.1:19300', bucket: 'results', credentialsSecretRef: { name: 's3-creds' } } },
    });
    expect(parsed.results.s3).toEqual({
      endpoint: 'http://10.244.0.1:19300',
      bucket: 'results',
      region: 'us-east-1',
      forcePathStyle: true,
      credentialsSecretRef: { name: 's3-creds', accessKeyIdKey: 'AWS_ACCESS_KEY_ID', secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY' },
    });
    const bad = (s3: Record<string, unknown>) =>
      swarmSpec.safeParse({
        objective: 'o',
        agent: { command: ['cat'] },
        results: { type: 's3', s3: { endpoint: 'http://s3:9000', bucket: 'results', credentialsSecretRef: { name: 'c' }, ...s3 } },
      });
    for (const prefix of ['swarms', '/swarms/', 'a//', 'a b/']) {
      const r = bad({ prefix });
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]?.path).toEqual(['results', 's3', 'prefix']);
    }
    expect(bad({ endpoint: 's3.example.com' }).error?.issues[0]?.path).toEqual(['results', 's3', 'endpoint']);
    expect(bad({ bucket: 'Results' }).error?.issues[0]?.path).toEqual(['results', 's3', 'bucket']);
  });
});
