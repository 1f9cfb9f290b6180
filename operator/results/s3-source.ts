// Reads a swarm run's records back from an S3-compatible bucket for
// `cfn results`: every key under `<prefix><namespace>/<name>/<uid>/` (listed
// page by page), each object fetched with bounded concurrency and parsed with
// storedResult. An object that is not a record is counted, never returned; a
// store that cannot be read fails the whole read (no partial answer).
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client, toS3StoreError, type S3ClientOptions } from './s3-client.js';
import type { S3Credentials } from './s3-credentials.js';
import { listObjects } from './s3-list.js';
import { s3RunPrefix, type S3ResultsConfig } from './s3-location.js';
import type { ResultSource, UnreadableRecord } from './result-sink.js';
import { indexOfKey, storedResult, type ResultScope, type StoredResult } from './stored-result.js';

/** Larger than any record (outputs are bounded by spec.agent.maxOutputBytes, at most 16 MiB, JSON-escaped): not fetched. */
export const MAX_RECORD_BYTES = 128 * 1024 * 1024;

export interface S3SourceOptions {
  config: S3ResultsConfig;
  scope: ResultScope;
  credentials: S3Credentials;
  client?: S3ClientOptions;
  /** Objects fetched at once (default 16). */
  concurrency?: number;
  /** Keys per list page (default: the server's, 1000 on S3). */
  pageSize?: number;
}

export class S3Source implements ResultSource {
  private readonly s3: S3Client;
  private readonly runPrefix: string;

  constructor(private readonly o: S3SourceOptions) {
    this.s3 = createS3Client(o.config, o.credentials, o.client);
    this.runPrefix = s3RunPrefix(o.config.prefix, o.scope);
  }

  async read(): Promise<{ results: StoredResult[]; unreadable: UnreadableRecord[] }> {
    const listed = await listObjects(this.s3, this.o.config, this.runPrefix, this.o.pageSize);
    const results: StoredResult[] = [];
    const unreadable: UnreadableRecord[] = [];
    const todo: { key: string; index: number; size: number }[] = [];
    for (const { key, size } of listed) {
      const index = indexOfKey(key.slice(this.runPrefix.length));
      if (index === undefined) unreadable.push({ key, reason: 'not a record name (<index>.json)' });
      else if (size > MAX_RECORD_BYTES) unreadable.push({ key, reason: `${size} bytes: larger than any record (${MAX_RECORD_BYTES})` });
      else todo.push({ key, index, size });
    }
    let next = 0;
    let failed = false;
    const worker = async () => {
      // After one failure the read is lost anyway: the other workers stop fetching.
      for (let item = todo[next++]; item && !failed; item = todo[next++]) {
        try {
          const r = await this.fetch(item.key, item.index);
          if ('record' in r) results.push(r.record);
          else unreadable.push({ key: item.key, reason: r.reason });
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.o.concurrency ?? 16, todo.length)) }, worker));
    results.sort((a, b) => a.index - b.index);
    unreadable.sort((a, b) => a.key.localeCompare(b.key));
    return { results, unreadable };
  }

  /** Releases the client's connections. */
  close(): void {
    this.s3.destroy();
  }

  private async fetch(key: string, index: number): Promise<{ record: StoredResult } | { reason: string }> {
    let text: string;
    try {
      const got = await this.s3.send(new GetObjectCommand({ Bucket: this.o.config.bucket, Key: key }));
      text = (await got.Body?.transformToString('utf8')) ?? '';
    } catch (err) {
      // Gone between the listing and the read: nothing to return for it, and nothing to fail the read for.
      if (err instanceof Error && err.name === 'NoSuchKey') return { reason: 'deleted while reading' };
      throw toS3StoreError(err, this.o.config, `reading ${key}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      return { reason: `not JSON: ${(err as Error).message}` };
    }
    const parsed = storedResult.safeParse(json);
    if (!parsed.success)
      return { reason: `not a stored result: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` };
    if (parsed.data.index !== index) return { reason: `holds index ${parsed.data.index}, named ${index}.json` };
    return { record: parsed.data };
  }
}
