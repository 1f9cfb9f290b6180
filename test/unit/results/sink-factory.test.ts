// spec.results -> the sink a coordinator stores in, and where status.results says the records are.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectorySink } from '../../../operator/results/directory-sink.js';
import { createSink } from '../../../operator/results/sink-factory.js';
import { ACCESS_KEY_ID_FILE, SECRET_ACCESS_KEY_FILE } from '../../../operator/results/s3-credentials.js';
import { S3Sink } from '../../../operator/results/s3-sink.js';
import { swarmSpec } from '../../../operator/api/swarm.js';
import { record } from './records.js';

const scope = { namespace: 'team', name: 'lint', uid: '1234-abcd' };
const resultsOf = (results: unknown) =>
  swarmSpec.parse({ objective: 'o', agents: 1, agent: { command: ['cat'] }, ...(results === undefined ? {} : { results }) }).results;

describe('createSink', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp('/dev/shm/cfn-test-factory-');
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('the default (a claim the operator creates): a directory sink at the results mount, location pvc://<swarm>-results/<ns>/<name>/<uid>/', async () => {
    const sink = await createSink(resultsOf(undefined), scope, { resultsDir: root, pod: 'lint-v2-1' });
    expect(sink).toBeInstanceOf(DirectorySink);
    expect(sink).toMatchObject({ type: 'persistentVolumeClaim', location: 'pvc://lint-results/team/lint/1234-abcd/' });
    await sink.put(record(0));
    expect(await readdir(join(root, 'team/lint/1234-abcd'))).toEqual(['0.json']);
  });

  it('an existing claim is named in the location; emptyDir names the pod', async () => {
    expect((await createSink(resultsOf({ claimName: 'shared' }), scope, { resultsDir: root })).location).toBe('pvc://shared/team/lint/1234-abcd/');
    expect(await createSink(resultsOf({ type: 'emptyDir' }), scope, { resultsDir: root, pod: 'lint-v1-2' })).toMatchObject({
      type: 'emptyDir',
      location: 'emptyDir://lint-v1-2/team/lint/1234-abcd/',
    });
  });

  it('a scope that is no directory name is refused', async () => {
    await expect(createSink(resultsOf(undefined), { ...scope, namespace: '../etc' }, { resultsDir: root })).rejects.toThrow(/scope namespace/);
  });

  it('s3: an S3 sink with the mounted Secret keys, location s3://<bucket>/<prefix><ns>/<name>/<uid>/; without them, the Secret named', async () => {
    const s3 = resultsOf({ type: 's3', s3: { endpoint: 'http://s3.storage:9000', bucket: 'bkt', prefix: 'swarms/', credentialsSecretRef: { name: 'creds' } } });
    await writeFile(join(root, ACCESS_KEY_ID_FILE), 'AKID');
    await writeFile(join(root, SECRET_ACCESS_KEY_FILE), 'secret');
    const sink = await createSink(s3, scope, { s3CredentialsDir: root });
    expect(sink).toBeInstanceOf(S3Sink);
    expect(sink).toMatchObject({ type: 's3', location: 's3://bkt/swarms/team/lint/1234-abcd/' });
    sink.close?.();
    await expect(createSink(s3, scope, { s3CredentialsDir: join(root, 'none') })).rejects.toThrow('S3 credentials: Secret "creds" does not exist');
  });
});
