// The S3 credentials of spec.results.s3.credentialsSecretRef, as the
// coordinator reads them at start: the Secret is mounted as a volume into the
// coordinator container only (coordinator-pod.ts), its two keys projected to
// fixed file names. Never environment variables: every agent process would
// inherit them.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { S3ResultsConfig } from './s3-location.js';

/** Where the coordinator container has the Secret's two keys. */
export const S3_CREDENTIALS_MOUNT_PATH = '/var/run/secrets/swarm.cfn.dev/s3-credentials';
export const S3_CREDENTIALS_VOLUME = 's3-credentials';
export const ACCESS_KEY_ID_FILE = 'access-key-id';
export const SECRET_ACCESS_KEY_FILE = 'secret-access-key';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The Secret is missing, lacks a key, or holds something that is not a key. */
export class S3CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'S3CredentialsError';
  }
}

type SecretRef = S3ResultsConfig['credentialsSecretRef'];

/**
 * One credential from a Secret key's bytes. A trailing newline (what
 * `kubectl create secret --from-file` of an edited file keeps) is dropped;
 * anything else that is not printable ASCII is refused, so a wrong key never
 * reaches the store as a confusing signature mismatch.
 */
export function parseCredential(raw: string, secret: string, key: string): string {
  const value = raw.replace(/\r?\n$/, '');
  if (value.length === 0) throw new S3CredentialsError(`Secret "${secret}" key "${key}" is empty`);
  if (value.length > 1024) throw new S3CredentialsError(`Secret "${secret}" key "${key}" holds ${value.length} characters: not an S3 credential`);
  if (!/^[\x21-\x7e]+$/.test(value))
    throw new S3CredentialsError(`Secret "${secret}" key "${key}" holds whitespace or non-ASCII characters: not an S3 credential`);
  return value;
}

async function readKey(dir: string, file: string, ref: SecretRef, key: string): Promise<string> {
  let raw: string;
  try {
    raw = await readFile(join(dir, file), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      // The volume is optional (a missing Secret must not hold the pod in ContainerCreating): absent file = no such Secret or key.
      throw new S3CredentialsError(
        `S3 credentials: Secret "${ref.name}" does not exist in the Swarm's namespace or has no key "${key}" (spec.results.s3.credentialsSecretRef)`,
      );
    }
    throw new S3CredentialsError(`S3 credentials: cannot read Secret "${ref.name}" key "${key}" at ${join(dir, file)}: ${(err as Error).message}`);
  }
  return parseCredential(raw, ref.name, key);
}

/** Reads the mounted Secret's access key id and secret access key. */
export async function readS3Credentials(ref: SecretRef, dir: string = S3_CREDENTIALS_MOUNT_PATH): Promise<S3Credentials> {
  // One after the other: the error names the first key missing, always the same one.
  const accessKeyId = await readKey(dir, ACCESS_KEY_ID_FILE, ref, ref.accessKeyIdKey);
  const secretAccessKey = await readKey(dir, SECRET_ACCESS_KEY_FILE, ref, ref.secretAccessKeyKey);
  return { accessKeyId, secretAccessKey };
}

/**
 * The coordinator pod's volume and mount of the Secret: only its two keys,
 * read-only, in the coordinator container alone. Optional, so a missing
 * Secret or key is the coordinator's clear error (readS3Credentials), not a
 * pod held in ContainerCreating.
 */
export function s3CredentialsVolume(ref: SecretRef) {
  return {
    volume: {
      name: S3_CREDENTIALS_VOLUME,
      secret: {
        secretName: ref.name,
        optional: true,
        defaultMode: 0o400,
        items: [
          { key: ref.accessKeyIdKey, path: ACCESS_KEY_ID_FILE },
          { key: ref.secretAccessKeyKey, path: SECRET_ACCESS_KEY_FILE },
        ],
      },
    },
    mount: { name: S3_CREDENTIALS_VOLUME, mountPath: S3_CREDENTIALS_MOUNT_PATH, readOnly: true },
  };
}

const secretData = z.looseObject({ data: z.record(z.string(), z.string()).optional() });

/**
 * The credentials in a Secret object as the API returns it (base64 data), for
 * `cfn results` reading with the user's own access to the Secret.
 */
export function s3CredentialsFromSecret(secret: unknown, ref: SecretRef): S3Credentials {
  const parsed = secretData.safeParse(secret);
  if (!parsed.success) throw new S3CredentialsError(`S3 credentials: "${ref.name}" is not a Secret`);
  const value = (key: string) => {
    const b64 = parsed.data.data?.[key];
    if (b64 === undefined) throw new S3CredentialsError(`S3 credentials: Secret "${ref.name}" has no key "${key}" (spec.results.s3.credentialsSecretRef)`);
    return parseCredential(Buffer.from(b64, 'base64').toString('utf8'), ref.name, key);
  };
  return { accessKeyId: value(ref.accessKeyIdKey), secretAccessKey: value(ref.secretAccessKeyKey) };
}

/**
 * A reader's own credentials from the standard AWS variables, when both are
 * set: the coordinator's Secret may hold a write-only key (docs/results.md).
 */
export function s3CredentialsFromEnv(env: Readonly<Record<string, string | undefined>>): S3Credentials | undefined {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId && !secretAccessKey) return undefined;
  if (!accessKeyId || !secretAccessKey)
    throw new S3CredentialsError("S3 credentials: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (then the Swarm's Secret is read)");
  return {
    accessKeyId: parseCredential(accessKeyId, 'environment', 'AWS_ACCESS_KEY_ID'),
    secretAccessKey: parseCredential(secretAccessKey, 'environment', 'AWS_SECRET_ACCESS_KEY'),
  };
}
