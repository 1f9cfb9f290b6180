// `cfn results`: its options, where each results type is read from, what it
// prints (JSON lines, a table, a directory, one agent), and the reader pod's
// side (`--dir`) printing a real directory's page.
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swarmSpec } from '../../../operator/api/swarm.js';
import { claimStores, parseResultsArgs, resultsCommand, resultsSource, ResultsUnavailable, resultsSummary } from '../../../operator/cli/results-command.js';
import { DirectorySink } from '../../../operator/results/directory-sink.js';
import { resultsTable, writeOutDir } from '../../../operator/cli/results-format.js';
import { runCli } from '../../../operator/cli/main.js';
import { KubeClient } from '../../../operator/k8s/client.js';
import { parseReaderLog } from '../../../operator/results/reader-protocol.js';
import { storedResult } from '../../../operator/results/stored-result.js';
import type { Swarm } from '../../../operator/api/swarm.js';
import type { ResultSource } from '../../../operator/results/result-sink.js';
import type { StoredResult } from '../../../operator/results/stored-result.js';
import { captureIo } from '../../helpers/capture.js';

const io = (env: NodeJS.ProcessEnv = {}) => captureIo(env);

const record = (index: number, status: 'completed' | 'failed' = 'completed', output = `out ${index}\nsecond line\n`): StoredResult => ({
  agentId: `agent-${index}`,
  index,
  status,
  exitCode: status === 'completed' ? 0 : 3,
  attempts: status === 'completed' ? 1 : 2,
  durationMs: 1500,
  output,
  outputBytes: Buffer.byteLength(output),
  outputTruncated: false,
  error: status === 'failed' ? 'agent exited 3\nboom' : null,
  version: 'v2',
  storedAt: '2026-12-04T12:00:00.000Z',
});

const swarmOf = (results: Record<string, unknown> = {}, status: Record<string, unknown> = {}): Swarm => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name: 'sw', namespace: 'team', uid: 'u1' },
  spec: swarmSpec.parse({ objective: 'o', agents: 2, agent: { command: ['cat'] }, results }),
  status,
});

/** A swarm of 9 agents in SHARDS shards. */
const sharded = (shards: number, results: Record<string, unknown> = {}, status: Record<string, unknown> = {}): Swarm => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name: 'sw', namespace: 'team', uid: 'u1' },
  spec: swarmSpec.parse({ objective: 'o', agents: 9, shards, agent: { command: ['cat'] }, results }),
  status,
});

const client = KubeClient.load(undefined);

describe('parseResultsArgs', () => {
  it("defaults: jsonl, all agents, the chart's image of this release, 120 s per reader pod", () => {
    const p = parseResultsArgs(['sw', '-n', 'team'], {});
    expect(p).toMatchObject({
      mode: 'swarm',
      name: 'sw',
      namespace: 'team',
      failed: false,
      format: 'jsonl',
      timeoutMs: 120_000,
      image: expect.stringMatching(/^swarm-operator:\d+\.\d+\.\d+/),
    });
    expect(parseResultsArgs(['sw'], { CFN_RESULTS_IMAGE: 'reg/op:1' })).toMatchObject({ image: 'reg/op:1' });
    expect(parseResultsArgs(['sw', '--failed', '--format', 'table', '--timeout', '30'], {})).toMatchObject({
      failed: true,
      format: 'table',
      timeoutMs: 30_000,
    });
    expect(parseResultsArgs(['sw', '--agent', '3'], {})).toMatchObject({ agent: 3 });
  });

  it('bad input: a clear usage error naming the flag', () => {
    expect(() => parseResultsArgs([], {})).toThrow('expected exactly one Swarm name, got none');
    expect(() => parseResultsArgs(['Bad_Name'], {})).toThrow('SWARM: a Swarm name');
    expect(() => parseResultsArgs(['sw', '--format', 'csv'], {})).toThrow('--format');
    expect(() => parseResultsArgs(['sw', '--agent', '-1'], {})).toThrow('--agent');
    expect(() => parseResultsArgs(['sw', '--timeout', '0'], {})).toThrow('--timeout');
    expect(() => parseResultsArgs(['sw', '--out', 'd', '--format', 'table'], {})).toThrow('--out writes files');
    expect(() => parseResultsArgs(['sw', '--agent', '1', '--failed'], {})).toThrow('--agent prints one agent');
    expect(() => parseResultsArgs(['sw', '--bogus'], {})).toThrow();
  });

  it("--dir: the reader pod's side, a page from an index", () => {
    expect(parseResultsArgs(['--dir', '/results/a', '--from', '4', '--max-bytes', '100'], {})).toEqual({
      mode: 'dir',
      dir: '/results/a',
      from: 4,
      maxBytes: 100,
    });
    expect(() => parseResultsArgs(['sw', '--dir', '/results/a'], {})).toThrow('no Swarm name');
  });
});

describe('resultsSource: where each type is read from', () => {
  const o = { client, image: 'img', timeoutMs: 1000 };
  it('a claim: status.results.location when written, else the claim and directory the spec implies', () => {
    expect(resultsSource(swarmOf(), o).where).toBe('pvc://sw-results/team/sw/u1/');
    expect(resultsSource(swarmOf({ claimName: 'mine' }), o).where).toBe('pvc://mine/team/sw/u1/');
    const located = swarmOf({}, { results: { type: 'persistentVolumeClaim', location: 'pvc://other/team/sw/u1/', stored: 2, bytes: 10 } });
    expect(resultsSource(located, o).where).toBe('pvc://other/team/sw/u1/');
  });

  it('emptyDir: a clear error (the results went with the pod)', () => {
    expect(() => resultsSource(swarmOf({ type: 'emptyDir' }), o)).toThrow(
      new ResultsUnavailable(
        'swarm team/sw: results were in an emptyDir and went with the pod; keep them with spec.results.type persistentVolumeClaim (the default) or s3',
      ),
    );
  });

  it('s3: read directly from the bucket, under the prefix (test/integration/results reads a real store)', () => {
    const s3 = swarmOf({ type: 's3', s3: { endpoint: 'http://s3:9000', bucket: 'bkt', prefix: 'p/', credentialsSecretRef: { name: 'c' } } });
    expect(resultsSource(s3, o).where).toBe('s3://bkt/p/team/sw/u1/');
  });

  it("s3, sharded: still one prefix, one set (every shard stores under the run's prefix)", () => {
    const s3 = sharded(3, { type: 's3', s3: { endpoint: 'http://s3:9000', bucket: 'bkt', prefix: 'p/', credentialsSecretRef: { name: 'c' } } });
    const source = resultsSource(s3, o);
    expect(source.where).toBe('s3://bkt/p/team/sw/u1/');
    expect(source.readAgent).toBeUndefined();
  });

  it("a sharded swarm: one claim per shard (status.shards[i].results's, else <swarm>-results-<i>), read as one set", () => {
    const sw = sharded(
      3,
      {},
      { shards: [{ index: 1, indexes: '3-5', results: { type: 'persistentVolumeClaim', location: 'pvc://moved-1/team/sw/u1/', stored: 3, bytes: 30 } }] },
    );
    expect(claimStores(sw)).toEqual([
      { claimName: 'sw-results-0', dir: 'team/sw/u1/', shards: [0], where: 'pvc://sw-results-0/team/sw/u1/' },
      { claimName: 'moved-1', dir: 'team/sw/u1/', shards: [1], where: 'pvc://moved-1/team/sw/u1/' },
      { claimName: 'sw-results-2', dir: 'team/sw/u1/', shards: [2], where: 'pvc://sw-results-2/team/sw/u1/' },
    ]);
    const source = resultsSource(sw, o);
    expect(source.where).toBe('3 claims: pvc://sw-results-0/team/sw/u1/, pvc://moved-1/team/sw/u1/, pvc://sw-results-2/team/sw/u1/');
    expect(source.readAgent).toBeDefined();
  });

  it('a sharded swarm on one named claim (shared by its shards): read once', () => {
    expect(claimStores(sharded(4, { claimName: 'rwx' }))).toEqual([
      { claimName: 'rwx', dir: 'team/sw/u1/', shards: [0, 1, 2, 3], where: 'pvc://rwx/team/sw/u1/' },
    ]);
  });

  it('one shard: the single claim, as before (status.shards ignored)', () => {
    expect(claimStores(sharded(1))).toEqual([{ claimName: 'sw-results', dir: 'team/sw/u1/', shards: [0], where: 'pvc://sw-results/team/sw/u1/' }]);
  });
});

describe('output', () => {
  it('table: index, status, exit, attempts, duration, the first line of the output or, failed, of the error; control characters never reach the terminal', () => {
    const t = resultsTable([record(0), record(1, 'failed'), record(2, 'completed', '\u001b[31mred\u0007\n')]);
    expect(t.split('\n')).toEqual([
      'INDEX  STATUS     EXIT  ATTEMPTS  DURATION  OUTPUT / ERROR',
      '0      completed  0     1         1.5s      out 0',
      '1      failed     3     2         1.5s      agent exited 3',
      '2      completed  0     1         1.5s      \u00b7[31mred\u00b7',
      '',
    ]);
    expect(resultsTable([record(0, 'completed', 'x'.repeat(500))], 80).split('\n')[1]!.length).toBeLessThanOrEqual(80);
  });

  it('--out: <index>.out holds the output byte for byte, results.jsonl the records without it', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'cfn-out-')), 'nested');
    await writeOutDir(dir, [record(0), record(7, 'failed', 'bytes \u0000 and\nlines')]);
    expect(readdirSync(dir).sort()).toEqual(['0.out', '7.out', 'results.jsonl']);
    expect(readFileSync(join(dir, '7.out'), 'utf8')).toBe('bytes \u0000 and\nlines');
    const index = readFileSync(join(dir, 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(index[1]).toMatchObject({ index: 7, status: 'failed', file: '7.out', error: 'agent exited 3\nboom' });
    expect(index[1]).not.toHaveProperty('output');
  });

  it('summary: counts, agents without a stored result, records that did not parse', () => {
    expect(resultsSummary('swarm team/sw', [record(0), record(1, 'failed')], [{ key: '5.json', reason: 'not JSON' }], 4)).toBe(
      'swarm team/sw: 2 results (1 completed, 1 failed) of 4 agents\n2 agents have no stored result\n1 records did not parse (skipped): 5.json: not JSON\n',
    );
    expect(resultsSummary('swarm team/sw', [record(0), record(1)], [], 2, 1)).toBe(
      'swarm team/sw: 2 results (2 completed, 0 failed) of 2 agents\n1 records of an index another store also held: the newer record of each index kept\n',
    );
  });
});

describe("cfn results --dir (the reader pod's side)", () => {
  it('prints a page of the directory source as reader lines that parse back to the records', async () => {
    const records = [record(0), record(1, 'failed')];
    const src: ResultSource = { read: async () => ({ results: records, unreadable: [{ key: '2.json', reason: 'bad' }] }) };
    const a = io();
    expect(await resultsCommand(['--dir', '/results/x'], a, { directorySource: () => src })).toBe(0);
    const page = parseReaderLog(a.out.text);
    expect(page.results).toEqual(records.map((r) => storedResult.parse(r)));
    expect(page.unreadable).toEqual([{ key: '2.json', reason: 'bad' }]);
    expect(page.end).toEqual({ next: null, stored: 2 });
    expect(a.err.text).toBe('');
  });

  it("a real directory written by the coordinator's sink: its records, a forged file counted as unreadable, pages that follow each other", async () => {
    const root = mkdtempSync(join(tmpdir(), 'cfn-dir-'));
    const scope = { namespace: 'team', name: 'sw', uid: 'u1' };
    const sink = new DirectorySink({ root, scope, type: 'persistentVolumeClaim', location: 'pvc://sw-results/team/sw/u1/' });
    for (const i of [0, 1, 2]) await sink.put(record(i, i === 1 ? 'failed' : 'completed', `${'x'.repeat(400)} ${i}`));
    writeFileSync(join(root, 'team/sw/u1/7.json'), '{"index": 7, "output": "forged"}');
    const first = io();
    expect(await runCli(['results', '--dir', join(root, 'team/sw/u1/'), '--max-bytes', '800'], first)).toBe(0);
    const p1 = parseReaderLog(first.out.text);
    expect(p1.results.map((r) => r.index)).toEqual([0, 1]);
    expect(p1.unreadable.map((u) => u.key)).toEqual(['7.json']);
    expect(p1.end).toEqual({ next: 2, stored: 3 });
    const second = io();
    expect(await runCli(['results', '--dir', join(root, 'team/sw/u1'), '--from', '2', '--max-bytes', '800'], second)).toBe(0);
    const p2 = parseReaderLog(second.out.text);
    expect(p2.results.map((r) => [r.index, r.output])).toEqual([[2, `${'x'.repeat(400)} 2`]]);
    expect(p2.unreadable).toEqual([]);
    expect(p2.end).toEqual({ next: null, stored: 3 });
    const bad = io();
    expect(await runCli(['results', '--dir', 'u1'], bad)).toBe(2);
    expect(bad.err.text).toContain('--dir: expected <root>/<namespace>/<name>/<uid>');
  });

  it('runCli: help, and usage errors exit 2', async () => {
    const h = io();
    expect(await runCli(['results', '--help'], h)).toBe(0);
    expect(h.out.text).toContain('Usage: cfn results SWARM');
    const bad = io();
    expect(await runCli(['results', 'sw', '--format', 'xml'], bad)).toBe(2);
    expect(bad.err.text).toContain('--format');
  });
});

describe('kubectl swarm results / logs', () => {
  it('are cfn results: logs needs --agent', async () => {
    const a = io();
    expect(await runCli(['swarm', 'logs', 'sw'], a)).toBe(2);
    expect(a.err.text).toContain('--agent N is required');
    const b = io();
    expect(await runCli(['swarm', '-n', 'team', 'results', '--help'], b)).toBe(0);
    expect(b.out.text).toContain('Usage: cfn results SWARM');
  });
});

// Keeps the written file helper honest about atomicity: no temp file is left.
describe('writeOutDir leaves no temporary file', () => {
  it('only the outputs and the index', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfn-out-'));
    writeFileSync(join(dir, 'keep.txt'), 'x');
    await writeOutDir(dir, [record(3)]);
    expect(readdirSync(dir).sort()).toEqual(['3.out', 'keep.txt', 'results.jsonl']);
  });
});
