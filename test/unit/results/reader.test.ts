// The reader pod (restricted Pod Security Standard, the claim read-only) and
// the line protocol between `cfn results --dir` and `cfn results`.
import { describe, expect, it } from '@jest/globals';
import { readerPodProgress } from '../../../operator/results/claim-source.js';
import { readerPod } from '../../../operator/results/reader-pod.js';
import { parseReaderLog, readerPage } from '../../../operator/results/reader-protocol.js';
import type { ResultSource } from '../../../operator/results/result-sink.js';
import type { StoredResult } from '../../../operator/results/stored-result.js';

const record = (index: number, output = `out ${index}\n`, status: 'completed' | 'failed' = 'completed'): StoredResult => ({
  agentId: `agent-${index}`,
  index,
  status,
  exitCode: status === 'completed' ? 0 : 3,
  attempts: 1,
  durationMs: 12,
  output,
  outputBytes: Buffer.byteLength(output),
  outputTruncated: false,
  error: status === 'failed' ? 'boom' : null,
  version: 'v2',
  pod: 'sw-v2-1',
  storedAt: '2026-12-04T12:00:00.000Z',
});

const source = (results: StoredResult[], unreadable: Array<{ key: string; reason: string }> = []): ResultSource => ({
  read: async () => ({ results, unreadable }),
});

async function collect(gen: AsyncGenerator<string>): Promise<string> {
  let text = '';
  for await (const line of gen) text += line;
  return text;
}

describe('readerPod', () => {
  const pod = readerPod(
    { namespace: 'team', swarm: 'sw', claimName: 'sw-results', dir: 'team/sw/u1/', image: 'swarm-operator:0.2.0', from: 7, maxBytes: 1000 },
    'sw-results-abc123',
  );

  it('meets the restricted Pod Security Standard, holds no API credential, ends by itself', () => {
    expect(pod.spec.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    const c = pod.spec.containers[0]!;
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.spec).toMatchObject({ restartPolicy: 'Never', automountServiceAccountToken: false, activeDeadlineSeconds: 600 });
    // Only volume types the restricted standard allows.
    expect(pod.spec.volumes.every((v) => Object.keys(v).every((k) => ['name', 'persistentVolumeClaim'].includes(k)))).toBe(true);
  });

  it("mounts the claim read-only and reads the swarm's directory, one page", () => {
    expect(pod.spec.volumes).toEqual([{ name: 'results', persistentVolumeClaim: { claimName: 'sw-results', readOnly: true } }]);
    const c = pod.spec.containers[0]!;
    expect(c.volumeMounts).toEqual([{ name: 'results', mountPath: '/results', readOnly: true }]);
    expect(c.args).toEqual(['results', '--dir', '/results/team/sw/u1', '--from', '7', '--max-bytes', '1000']);
    expect(c.image).toBe('swarm-operator:0.2.0');
    // Not the coordinator pods' label: the operator would take it for one.
    expect(pod.metadata.labels).not.toHaveProperty('swarm.cfn.dev/swarm');
    expect(pod.metadata.labels['swarm.cfn.dev/results-of']).toBe('sw');
  });
});

describe('reader protocol', () => {
  it('a page round-trips: records in index order, unreadable ones, the end line', async () => {
    const log = await collect(
      readerPage(source([record(0), record(1, 'line\n\u0000"quoted"', 'failed'), record(5)], [{ key: '3.json', reason: 'not JSON' }]), 0),
    );
    const page = parseReaderLog(log);
    expect(page.results.map((r) => r.index)).toEqual([0, 1, 5]);
    expect(page.results[1]?.output).toBe('line\n\u0000"quoted"');
    expect(page.unreadable).toEqual([{ key: '3.json', reason: 'not JSON' }]);
    expect(page.end).toEqual({ next: null, stored: 3 });
  });

  it('pages by bytes: at least one record per page, the next page starts where this one stopped', async () => {
    const all = [record(0, 'x'.repeat(300)), record(1, 'y'.repeat(300)), record(2, 'z'.repeat(300)), record(4)];
    const first = parseReaderLog(await collect(readerPage(source(all), 0, 1000)));
    expect(first.results.map((r) => r.index)).toEqual([0, 1]);
    expect(first.end?.next).toBe(2);
    const second = parseReaderLog(await collect(readerPage(source(all), 2, 1000)));
    expect(second.results.map((r) => r.index)).toEqual([2, 4]);
    expect(second.end?.next).toBeNull();
    const tiny = parseReaderLog(await collect(readerPage(source(all), 0, 1)));
    expect(tiny.results.map((r) => r.index)).toEqual([0]);
  });

  it('lines that are not the protocol and records that fail the schema are counted, never returned; a cut log has no end', () => {
    const good = JSON.stringify({ kind: 'record', record: record(0) });
    const forged = JSON.stringify({ kind: 'record', record: { ...record(1), index: -1 } });
    const page = parseReaderLog(`${good}\nnode: warning, something\n${forged}\n{"kind":"other"}\n`);
    expect(page.results.map((r) => r.index)).toEqual([0]);
    expect(page.unreadable.map((u) => u.key)).toEqual(['log line 2', 'log line 3', 'log line 4']);
    expect(page.unreadable[1]?.reason).toContain('index');
    expect(page.end).toBeUndefined();
  });
});

describe('readerPodProgress', () => {
  it("done, hopeless (an image that is not there) or waiting with the scheduler's words", () => {
    expect(readerPodProgress({ status: { phase: 'Succeeded' } })).toEqual({ done: 'Succeeded' });
    expect(
      readerPodProgress({
        status: { phase: 'Pending', containerStatuses: [{ state: { waiting: { reason: 'ErrImageNeverPull', message: 'image not present' } } }] },
      }),
    ).toEqual({ hopeless: 'ErrImageNeverPull: image not present' });
    expect(
      readerPodProgress({
        status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes available' }] },
      }),
    ).toEqual({ waiting: 'Unschedulable: 0/1 nodes available' });
    expect(readerPodProgress({})).toEqual({ waiting: 'Pending' });
  });
});
