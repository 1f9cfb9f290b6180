import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swarmSpec, type Swarm } from '../../../operator/api/swarm.js';
import {
  ACCESS_KEY_ID_FILE,
  parseCredential,
  readS3Credentials,
  S3_CREDENTIALS_MOUNT_PATH,
  S3CredentialsError,
  s3CredentialsFromEnv,
  s3CredentialsFromSecret,
  SECRET_ACCESS_KEY_FILE,
} from '../../../operator/results/s3-credentials.js';
import { CONTAINER_NAME, coordinatorPod } from '../../../operator/swarm/coordinator-pod.js';

const ref = { name: 's3-creds', accessKeyIdKey: 'AWS_ACCESS_KEY_ID', secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY' };

describe('parseCredential', () => {
  it('keeps the value, dropping one trailing newline', () => {
    expect(parseCredential('AKIAEXAMPLE', 's', 'k')).toBe('AKIAEXAMPLE');
    expect(parseCredential('wJalr/K7MDENG+bPxRfiCY\n', 's', 'k')).toBe('wJalr/K7MDENG+bPxRfiCY');
    expect(parseCredential('abc\r\n', 's', 'k')).toBe('abc');
  });

  it('refuses what is not a credential, naming the Secret and key', () => {
    expect(() => parseCredential('', 's3-creds', 'AWS_ACCESS_KEY_ID')).toThrow('Secret "s3-creds" key "AWS_ACCESS_KEY_ID" is empty');
    expect(() => parseCredential('\n', 's3-creds', 'k')).toThrow(S3CredentialsError);
    expect(() => parseCredential('two words', 's3-creds', 'k')).toThrow(
      'Secret "s3-creds" key "k" holds whitespace or non-ASCII characters: not an S3 credential',
    );
    expect(() => parseCredential('abc\n\n', 's3-creds', 'k')).toThrow('whitespace');
    expect(() => parseCredential('cl\u00e9', 's3-creds', 'k')).toThrow('non-ASCII');
    expect(() => parseCredential('x'.repeat(1025), 's3-creds', 'k')).toThrow('holds 1025 characters');
  });
});

describe('readS3Credentials', () => {
  it('reads the two projected files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's3-creds-'));
    writeFileSync(join(dir, ACCESS_KEY_ID_FILE), 'AKID\n');
    writeFileSync(join(dir, SECRET_ACCESS_KEY_FILE), 'sEcReT/+=');
    await expect(readS3Credentials(ref, dir)).resolves.toEqual({ accessKeyId: 'AKID', secretAccessKey: 'sEcReT/+=' });
  });

  it('a missing Secret or key (the optional volume is then empty) names the Secret, the key and the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's3-creds-'));
    await expect(readS3Credentials(ref, dir)).rejects.toThrow(
      'S3 credentials: Secret "s3-creds" does not exist in the Swarm\'s namespace or has no key "AWS_ACCESS_KEY_ID" (spec.results.s3.credentialsSecretRef)',
    );
    writeFileSync(join(dir, ACCESS_KEY_ID_FILE), 'AKID');
    await expect(readS3Credentials({ ...ref, secretAccessKeyKey: 'secret' }, dir)).rejects.toThrow('has no key "secret"');
  });
});

describe('coordinatorPod with results in S3', () => {
  const spec = (results: Record<string, unknown>) =>
    swarmSpec.parse({ objective: 'o', agent: { command: ['cat'], env: [{ name: 'A', value: 'b' }] }, results });
  const swarmOf = (s: ReturnType<typeof spec>): Swarm => ({
    apiVersion: 'swarm.cfn.dev/v1alpha1',
    kind: 'Swarm',
    metadata: { name: 'sw', namespace: 'ns', uid: 'u1' },
    spec: s,
  });
  const s3 = { type: 's3', s3: { endpoint: 'http://s3:9000', bucket: 'results', credentialsSecretRef: { name: 's3-creds', secretAccessKeyKey: 'secret' } } };

  it('mounts only the two keys of the Secret, read-only, optional, into the coordinator container; nothing in env', () => {
    for (const version of ['v1', 'v2'] as const) {
      const pod = coordinatorPod(swarmOf(spec(s3)), version, { image: 'img', attempt: 1 });
      expect(pod.spec.volumes).toContainEqual({
        name: 's3-credentials',
        secret: {
          secretName: 's3-creds',
          optional: true,
          defaultMode: 0o400,
          items: [
            { key: 'AWS_ACCESS_KEY_ID', path: ACCESS_KEY_ID_FILE },
            { key: 'secret', path: SECRET_ACCESS_KEY_FILE },
          ],
        },
      });
      expect(pod.spec.containers).toHaveLength(1);
      const c = pod.spec.containers[0]!;
      expect(c.name).toBe(CONTAINER_NAME);
      expect(c.volumeMounts).toContainEqual({ name: 's3-credentials', mountPath: S3_CREDENTIALS_MOUNT_PATH, readOnly: true });
      const env = JSON.stringify(c.env);
      expect(env).not.toMatch(/s3-creds|secretKeyRef|AWS_/);
    }
  });

  it('no Secret volume for the other result types', () => {
    for (const results of [{}, { type: 'emptyDir' }, { type: 'persistentVolumeClaim', claimName: 'c' }]) {
      const pod = coordinatorPod(swarmOf(spec(results)), 'v2', { image: 'img', attempt: 1 });
      expect(pod.spec.volumes.map((v) => (v as { name: string }).name)).not.toContain('s3-credentials');
    }
  });
});

describe('credentials for a reader (cfn results)', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('from the Secret object the API returns', () => {
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's3-creds' },
      data: { AWS_ACCESS_KEY_ID: b64('AKID'), AWS_SECRET_ACCESS_KEY: b64('sk\n'), other: b64('x') },
    };
    expect(s3CredentialsFromSecret(secret, ref)).toEqual({ accessKeyId: 'AKID', secretAccessKey: 'sk' });
    expect(() => s3CredentialsFromSecret({ data: { AWS_ACCESS_KEY_ID: b64('AKID') } }, ref)).toThrow(
      'S3 credentials: Secret "s3-creds" has no key "AWS_SECRET_ACCESS_KEY" (spec.results.s3.credentialsSecretRef)',
    );
    expect(() => s3CredentialsFromSecret({ metadata: {} }, ref)).toThrow('has no key "AWS_ACCESS_KEY_ID"');
    expect(() => s3CredentialsFromSecret('nope', ref)).toThrow('"s3-creds" is not a Secret');
  });

  it('from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, both or neither', () => {
    expect(s3CredentialsFromEnv({})).toBeUndefined();
    expect(s3CredentialsFromEnv({ AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'sk' })).toEqual({ accessKeyId: 'AKID', secretAccessKey: 'sk' });
    expect(() => s3CredentialsFromEnv({ AWS_ACCESS_KEY_ID: 'AKID' })).toThrow('set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither');
  });
});
