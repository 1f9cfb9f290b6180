// Stores each agent's record as one object in an S3-compatible bucket:
// `<prefix><namespace>/<name>/<uid>/<index>.json`. An S3 PUT is atomic (the
// object is the old one or the new one, never half of either) and durable
// once answered, so a later record of an index replaces the earlier one and
// exactly one survives.
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client, toS3StoreError, type S3ClientOptions } from './s3-client.js';
import { readS3Credentials, type S3Credentials } from './s3-credentials.js';
import { listObjects } from './s3-list.js';
import { s3Location, s3ObjectKey, s3RunPrefix, type S3ResultsConfig } from './s3-location.js';
import { inRange } from './result-sink.js';
import type { IndexRange, ResultSink } from './result-sink.js';
import { indexOfKey, type ResultScope, type StoredResult } from './stored-result.js';

export interface S3SinkOptions {
  config: S3ResultsConfig;
  scope: ResultScope;
  credentials: S3Credentials;
  client?: S3ClientOptions;
}

export class S3Sink implements ResultSink {
  readonly type = 's3' as const;
  readonly location: string;
  private readonly s3: S3Client;

  constructor(private readonly o: S3SinkOptions) {
    this.location = s3Location(o.config, o.scope);
    this.s3 = createS3Client(o.config, o.credentials, o.client);
  }

  async put(record: StoredResult): Promise<{ bytes: number }> {
    const key = s3ObjectKey(this.o.config.prefix, this.o.scope, record.index);
    // The same bytes as every sink's record: one JSON line.
    const body = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
    try {
      await this.s3.send(
        new PutObjectCommand({ Bucket: this.o.config.bucket, Key: key, Body: body, ContentType: 'application/json', ContentLength: body.length }),
      );
    } catch (err) {
      throw toS3StoreError(err, this.o.config, `storing ${key}`);
    }
    return { bytes: body.length };
  }

  /**
   * The records an earlier coordinator of the run stored (index and size, by
   * key name; a reader parses them). Needs s3:ListBucket: with a write-only
   * key it fails, and the coordinator counts from the previous status.
   */
  async inventory(range?: IndexRange): Promise<Array<{ index: number; bytes: number }>> {
    const prefix = s3RunPrefix(this.o.config.prefix, this.o.scope);
    const out: Array<{ index: number; bytes: number }> = [];
    for (const { key, size } of await listObjects(this.s3, this.o.config, prefix)) {
      const index = indexOfKey(key.slice(prefix.length));
      if (index !== undefined && inRange(index, range)) out.push({ index, bytes: size });
    }
    return out.sort((a, b) => a.index - b.index);
  }

  /** Releases the client's connections. */
  close(): void {
    this.s3.destroy();
  }
}

/** The coordinator's sink: credentials read from the mounted Secret (s3-credentials.ts). */
export async function openS3Sink(config: S3ResultsConfig, scope: ResultScope, credentialsDir?: string): Promise<S3Sink> {
  const credentials = await readS3Credentials(config.credentialsSecretRef, credentialsDir);
  return new S3Sink({ config, scope, credentials });
}
