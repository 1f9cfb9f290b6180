// spec.results -> the sink a coordinator stores in, and where status.results says the records are.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectorySink } from '../../../operator/results/directory-sink.js';
import { createSink } from '../../../operator/results/sink-factory.js';
import { swarmSpec } from '../../../operator/api/swarm.js';
import { record } from './records.js';

const scope = { namespace: 'team', name: 'lint', uid: '1234-abcd' };
const resultsOf = (results: unknown) => swarmSpec.parse({ objective: 'o', agents: 1, agent: { command: ['cat'] }, ...(results === undefined ? {} : { results }) }).results;

describe('createSink', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp('/dev/shm/cfn-test-factory-');
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('the default (a claim the operator creates): a directory sink at the results mount, location pvc://<swarm>-results/<ns>/<name>/<uid>/', async () => {
    const sink = createSink(resultsOf(undefined), scope, { resultsDir: root, pod: 'lint-v2-1' });
    expect(sink).toBeInstanceOf(DirectorySink);
    expect(sink).toMatchObject({ type: 'persistentVolumeClaim', location: 'pvc://lint-results/team/lint/1234-abcd/' });
    await sink.put(record(0));
    expect(await readdir(join(root, 'team/lint/1234-abcd'))).toEqual(['0.json']);
  });

  it('an existing claim is named in the location; emptyDir names the pod', () => {
    expect(createSink(resultsOf({ claimName: 'shared' }), scope, { resultsDir: root }).location).toBe('pvc://shared/team/lint/1234-abcd/');
    expect(createSink(resultsOf({ type: 'emptyDir' }), scope, { resultsDir: root, pod: 'lint-v1-2' })).toMatchObject({ type: 'emptyDir', location: 'emptyDir://lint-v1-2/team/lint/1234-abcd/' });
  });

  it('a scope that is no directory name is refused', () => {
    expect(() => createSink(resultsOf(undefined), { ...scope, namespace: '../etc' }, { resultsDir: root })).toThrow(/scope namespace/);
  });
});
