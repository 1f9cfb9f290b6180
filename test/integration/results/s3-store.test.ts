// S3Sink and S3Source against a real S3-compatible server (Versity's gateway
// over a posix directory, test/s3/s3-server.sh): records stored and read back,
// a replaced index leaves one object, more than one list page, unreadable
// objects counted, the prefix honoured, and clear typed errors (unreachable
// endpoint, wrong credentials, missing bucket) with nothing partial.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../../operator/results/s3-client.js';
import { S3StoreError } from '../../../operator/results/s3-store-error.js';
import { openS3Sink, S3Sink } from '../../../operator/results/s3-sink.js';
import { ACCESS_KEY_ID_FILE, SECRET_ACCESS_KEY_FILE } from '../../../operator/results/s3-credentials.js';
import { S3Source } from '../../../operator/results/s3-source.js';
import { s3ResultsSource } from '../../../operator/results/s3-results-source.js';
import { resourcePath } from '../../../operator/k8s/client.js';
import { client } from '../operator/harness.js';
import type { S3ResultsConfig } from '../../../operator/results/s3-location.js';
import type { ResultScope, StoredResult } from '../../../operator/results/stored-result.js';
import { startS3Server, type S3TestServer } from '../../s3/s3-test-server.js';

let server: S3TestServer;

beforeAll(() => {
  server = startS3Server({ buckets: ['results', 'other'] });
}, 300_000);

afterAll(() => {
  server?.stop();
});

const secretRef = { name: 's3-creds', accessKeyIdKey: 'AWS_ACCESS_KEY_ID', secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY' };
const config = (over: Partial<S3ResultsConfig> = {}): S3ResultsConfig => ({
  endpoint: server.endpoint,
  bucket: 'results',
  region: server.region,
  forcePathStyle: true,
  credentialsSecretRef: secretRef,
  ...over,
});
const creds = () => ({ accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey });
let runs = 0;
/** A scope of its own per test: results of different runs never mix. */
const scope = (): ResultScope => ({ namespace: 'team-a', name: 'lint', uid: `uid-${++runs}-${process.pid}` });

const record = (index: number, output = `output of ${index}\n`): StoredResult => ({
  agentId: `agent-${index}`,
  index,
  status: index % 7 === 3 ? 'failed' : 'completed',
  exitCode: index % 7 === 3 ? 1 : 0,
  attempts: 1,
  durationMs: 12.5,
  output,
  outputBytes: Buffer.byteLength(output),
  outputTruncated: false,
  error: index % 7 === 3 ? 'exit code 1' : null,
  version: 'v2',
  pod: 'lint-v2-1',
  storedAt: new Date(1_780_000_000_000 + index).toISOString(),
});

/** Every key the server holds under `prefix` (read with the server's own keys, not through the code under test). */
async function keysUnder(prefix: string, bucket = 'results'): Promise<string[]> {
  const s3 = createS3Client(config({ bucket }), creds());
  const keys: string[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      for (const c of page.Contents ?? []) keys.push(c.Key ?? '');
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    s3.destroy();
  }
  return keys.sort();
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function putAll(sink: S3Sink, records: readonly StoredResult[], parallel = 16): Promise<number> {
  let next = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < records.length) bytes += (await sink.put(records[next++]!)).bytes;
    }),
  );
  return bytes;
}

describe('S3Sink and S3Source on a real S3-compatible server', () => {
  it('stores one object per index under <prefix><namespace>/<name>/<uid>/ and reads them back in index order', async () => {
    const s = scope();
    const sink = new S3Sink({ config: config({ prefix: 'swarms/' }), scope: s, credentials: creds() });
    expect(sink.type).toBe('s3');
    expect(sink.location).toBe(`s3://results/swarms/team-a/lint/${s.uid}/`);
    const records = [record(2), record(0, 'a diff\n--- a\n+++ b\n\u00e9\u4e2d \u{1f600}\n'), record(1)];
    let bytes = 0;
    for (const r of records) bytes += (await sink.put(r)).bytes;
    sink.close();

    expect(await keysUnder('')).toEqual(expect.arrayContaining([0, 1, 2].map((i) => `swarms/team-a/lint/${s.uid}/${i}.json`)));
    expect(await keysUnder(`swarms/team-a/lint/${s.uid}/`)).toHaveLength(3);
    // What the server wrote to its disk: the record, byte for byte.
    const onDisk = join(server.bucketDir('results'), 'swarms/team-a/lint', s.uid, '0.json');
    expect(JSON.parse(readFileSync(onDisk, 'utf8'))).toEqual(records[1]);
    const totalOnDisk = [0, 1, 2].reduce((n, i) => n + readFileSync(join(server.bucketDir('results'), 'swarms/team-a/lint', s.uid, `${i}.json`)).length, 0);
    expect(bytes).toBe(totalOnDisk);

    const source = new S3Source({ config: config({ prefix: 'swarms/' }), scope: s, credentials: creds() });
    const { results, unreadable } = await source.read();
    source.close();
    expect(unreadable).toEqual([]);
    expect(results).toEqual([records[1], records[2], records[0]]);

    // A replacement coordinator's inventory: what is stored, with the sizes the puts reported.
    const next = new S3Sink({ config: config({ prefix: 'swarms/' }), scope: s, credentials: creds() });
    const inventory = await next.inventory();
    next.close();
    expect(inventory.map((i) => i.index)).toEqual([0, 1, 2]);
    expect(inventory.reduce((n, i) => n + i.bytes, 0)).toBe(bytes);
  });

  it('openS3Sink: the coordinator sink with the credentials of the mounted Secret files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's3-creds-'));
    try {
      writeFileSync(join(dir, ACCESS_KEY_ID_FILE), `${server.accessKeyId}\n`);
      writeFileSync(join(dir, SECRET_ACCESS_KEY_FILE), server.secretAccessKey);
      const s = scope();
      const sink = await openS3Sink(config(), s, dir);
      await sink.put(record(3));
      sink.close();
      expect(await keysUnder(`team-a/lint/${s.uid}/`)).toEqual([`team-a/lint/${s.uid}/3.json`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a later put of an index replaces the earlier one: exactly one object survives, the last', async () => {
    const s = scope();
    const sink = new S3Sink({ config: config(), scope: s, credentials: creds() });
    await sink.put(record(5, 'first attempt\n'));
    await sink.put({ ...record(5, 'final answer\n'), attempts: 2 });
    await sink.put(record(6));
    sink.close();
    expect(await keysUnder(`team-a/lint/${s.uid}/`)).toEqual([`team-a/lint/${s.uid}/5.json`, `team-a/lint/${s.uid}/6.json`]);
    const source = new S3Source({ config: config(), scope: s, credentials: creds() });
    const { results, unreadable } = await source.read();
    source.close();
    expect(unreadable).toEqual([]);
    expect(results.map((r) => [r.index, r.output, r.attempts])).toEqual([
      [5, 'final answer\n', 2],
      [6, 'output of 6\n', 1],
    ]);
  });

  it('reads more than one list page: 1100 records (S3 lists at most 1000 keys a page)', async () => {
    const s = scope();
    const sink = new S3Sink({ config: config({ prefix: 'big/' }), scope: s, credentials: creds() });
    const records = Array.from({ length: 1100 }, (_, i) => record(i));
    await putAll(sink, records);
    sink.close();
    expect(await keysUnder(`big/team-a/lint/${s.uid}/`)).toHaveLength(1100);

    const source = new S3Source({ config: config({ prefix: 'big/' }), scope: s, credentials: creds(), concurrency: 8 });
    const { results, unreadable } = await source.read();
    source.close();
    expect(unreadable).toEqual([]);
    expect(results).toHaveLength(1100);
    expect(results.map((r) => r.index)).toEqual(records.map((r) => r.index));
    expect(results[1099]).toEqual(records[1099]);
    // Small pages too: every page followed, nothing read twice.
    const paged = new S3Source({ config: config({ prefix: 'big/' }), scope: s, credentials: creds(), pageSize: 250 });
    const again = await paged.read();
    paged.close();
    expect(again.results.map((r) => r.index)).toEqual(records.map((r) => r.index));
  }, 120_000);

  it('counts objects that are not records and never returns them', async () => {
    const s = scope();
    const dir = `team-a/lint/${s.uid}/`;
    const sink = new S3Sink({ config: config(), scope: s, credentials: creds() });
    await sink.put(record(0));
    await sink.put(record(1));
    sink.close();
    const raw = createS3Client(config(), creds());
    const forged: [string, string][] = [
      ['2.json', '{"agentId": "agent-2", "index": 2, "output": "tru'],
      ['3.json', JSON.stringify({ ...record(3), status: 'succeeded-trust-me' })],
      ['4.json', JSON.stringify(record(1, 'I am index 1, stored as 4'))],
      ['notes.txt', 'hello'],
      ['007.json', JSON.stringify(record(7))],
      ['sub/5.json', JSON.stringify(record(5))],
    ];
    for (const [name, body] of forged) await raw.send(new PutObjectCommand({ Bucket: 'results', Key: `${dir}${name}`, Body: body }));
    raw.destroy();

    const source = new S3Source({ config: config(), scope: s, credentials: creds() });
    const { results, unreadable } = await source.read();
    source.close();
    expect(results.map((r) => r.index)).toEqual([0, 1]);
    expect(results[1]).toEqual(record(1));
    expect(unreadable.map((u) => u.key)).toEqual(forged.map(([n]) => `${dir}${n}`).sort());
    const reason = (name: string) => unreadable.find((u) => u.key === `${dir}${name}`)?.reason;
    expect(reason('2.json')).toMatch(/^not JSON/);
    expect(reason('3.json')).toMatch(/^not a stored result: status/);
    expect(reason('4.json')).toBe('holds index 1, named 4.json');
    expect(reason('notes.txt')).toBe('not a record name (<index>.json)');
  });

  it('honours the prefix: runs under different prefixes, scopes and buckets never mix', async () => {
    const s = scope();
    const other = { ...s, uid: `${s.uid}-next` };
    const puts: [Partial<S3ResultsConfig>, ResultScope, number][] = [
      [{}, s, 0],
      [{ prefix: 'a/b/' }, s, 1],
      [{ prefix: 'a/' }, s, 2],
      [{ prefix: 'a/b/' }, other, 3],
      [{ bucket: 'other', prefix: 'a/b/' }, s, 4],
    ];
    for (const [over, sc, index] of puts) {
      const sink = new S3Sink({ config: config(over), scope: sc, credentials: creds() });
      await sink.put(record(index));
      sink.close();
    }
    const read = async (over: Partial<S3ResultsConfig>, sc: ResultScope) => {
      const source = new S3Source({ config: config(over), scope: sc, credentials: creds() });
      try {
        return (await source.read()).results.map((r) => r.index);
      } finally {
        source.close();
      }
    };
    expect(await read({}, s)).toEqual([0]);
    expect(await read({ prefix: 'a/b/' }, s)).toEqual([1]);
    expect(await read({ prefix: 'a/' }, s)).toEqual([2]);
    expect(await read({ prefix: 'a/b/' }, other)).toEqual([3]);
    expect(await read({ bucket: 'other', prefix: 'a/b/' }, s)).toEqual([4]);
    expect(readdirSync(join(server.bucketDir('results'), 'a/b/team-a/lint', s.uid))).toEqual(['1.json']);
    expect(existsSync(join(server.bucketDir('other'), 'a/b/team-a/lint', s.uid, '4.json'))).toBe(true);
  });

  it('an unreachable endpoint: a retryable error naming endpoint and bucket; nothing stored, nothing partial read', async () => {
    const s = scope();
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const sink = new S3Sink({ config: config({ endpoint }), scope: s, credentials: creds(), client: { maxAttempts: 1 } });
    const err = await sink.put(record(0)).then(
      () => undefined,
      (e: unknown) => e,
    );
    sink.close();
    expect(err).toBeInstanceOf(S3StoreError);
    const e = err as S3StoreError;
    expect(e.kind).toBe('unreachable');
    expect(e.retryable).toBe(true);
    expect(e.message).toBe(`S3 endpoint ${endpoint} unreachable (ECONNREFUSED) storing team-a/lint/${s.uid}/0.json in bucket "results"`);

    const source = new S3Source({ config: config({ endpoint }), scope: s, credentials: creds(), client: { maxAttempts: 1 } });
    await expect(source.read()).rejects.toThrow(`S3 endpoint ${endpoint} unreachable (ECONNREFUSED) listing team-a/lint/${s.uid}/ in bucket "results"`);
    source.close();
  });

  it('wrong credentials: a permanent error naming endpoint, bucket and the Secret field; nothing stored, nothing partial read', async () => {
    const s = scope();
    const good = new S3Sink({ config: config(), scope: s, credentials: creds() });
    await good.put(record(0));
    good.close();
    for (const wrong of [
      { accessKeyId: 'NOSUCHKEY', secretAccessKey: server.secretAccessKey },
      { accessKeyId: server.accessKeyId, secretAccessKey: 'not-the-secret' },
    ]) {
      const sink = new S3Sink({ config: config(), scope: s, credentials: wrong });
      const err = await sink.put(record(1)).then(
        () => undefined,
        (e: unknown) => e,
      );
      sink.close();
      expect(err).toBeInstanceOf(S3StoreError);
      const e = err as S3StoreError;
      expect(e.kind).toBe('credentials-refused');
      expect(e.retryable).toBe(false);
      expect(e.message).toContain(`S3 credentials refused by ${server.endpoint} for bucket "results" (storing team-a/lint/${s.uid}/1.json)`);
      expect(e.message).toContain('spec.results.s3.credentialsSecretRef');
      const source = new S3Source({ config: config(), scope: s, credentials: wrong });
      await expect(source.read()).rejects.toThrow(`S3 credentials refused by ${server.endpoint} for bucket "results" (listing team-a/lint/${s.uid}/)`);
      source.close();
    }
    expect(await keysUnder(`team-a/lint/${s.uid}/`)).toEqual([`team-a/lint/${s.uid}/0.json`]);
  });

  it('a missing bucket: a permanent error naming it', async () => {
    const s = scope();
    const sink = new S3Sink({ config: config({ bucket: 'no-such-bucket' }), scope: s, credentials: creds() });
    const err = await sink.put(record(0)).then(
      () => undefined,
      (e: unknown) => e,
    );
    sink.close();
    expect(err).toBeInstanceOf(S3StoreError);
    expect((err as S3StoreError).kind).toBe('no-such-bucket');
    expect((err as S3StoreError).message).toBe(
      `S3 bucket "no-such-bucket" does not exist at ${server.endpoint} (storing team-a/lint/${s.uid}/0.json): create it, or fix spec.results.s3.bucket`,
    );
    const source = new S3Source({ config: config({ bucket: 'no-such-bucket' }), scope: s, credentials: creds() });
    await expect(source.read()).rejects.toThrow(`S3 bucket "no-such-bucket" does not exist at ${server.endpoint}`);
    source.close();
  });

  it('s3ResultsSource (cfn results): the Secret read through the real API server, or the reader keys in env', async () => {
    const s = scope();
    const sink = new S3Sink({ config: config({ prefix: 'cli/' }), scope: s, credentials: creds() });
    await sink.put(record(0));
    await sink.put(record(1));
    sink.close();
    const kube = client();
    const ns = `s3-${process.pid}-${runs}`;
    await kube.create(resourcePath({ group: '', version: 'v1', plural: 'namespaces' }), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    try {
      await kube.create(resourcePath({ group: '', version: 'v1', plural: 'secrets', namespace: ns }), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 's3-creds' },
        stringData: { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: `${server.secretAccessKey}\n` },
      });
      const readSecret = (name: string) => kube.get(resourcePath({ group: '', version: 'v1', plural: 'secrets', namespace: ns, name }));
      const fromSecret = s3ResultsSource({ config: config({ prefix: 'cli/' }), scope: s, env: {}, readSecret });
      expect(fromSecret.where).toBe(`s3://results/cli/team-a/lint/${s.uid}/`);
      expect((await fromSecret.read()).results).toEqual([record(0), record(1)]);
      // Keys in env win (the Secret is not read): wrong ones are refused by the server, naming it.
      const fromEnv = s3ResultsSource({
        config: config({ prefix: 'cli/' }),
        scope: s,
        env: { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong' },
        readSecret,
      });
      await expect(fromEnv.read()).rejects.toThrow(`S3 credentials refused by ${server.endpoint} for bucket "results"`);
      const noSecret = s3ResultsSource({
        config: config({ prefix: 'cli/', credentialsSecretRef: { ...secretRef, name: 'missing' } }),
        scope: s,
        env: {},
        readSecret,
      });
      await expect(noSecret.read()).rejects.toThrow(/not found/i);
    } finally {
      await kube.delete(resourcePath({ group: '', version: 'v1', plural: 'namespaces', name: ns }));
      await kube.close();
    }
  });
});
