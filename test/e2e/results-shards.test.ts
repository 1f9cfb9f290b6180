// A sharded swarm's results, read back on a real node: each shard's claim
// (a hostPath volume here) holds the records of its range, one reader pod per
// claim reads them, and `cfn results`'s source returns one set by index: an
// index both claims hold once (the newer record), the duplicate counted, a
// record that does not parse counted with its claim's name. The Swarm is the
// object `cfn results` would read (its spec and uid), built here, so no
// operator runs it: the claims hold exactly what the test wrote.
import { describe, expect, it, jest } from '@jest/globals';
import { swarm as swarmSchema } from '../../operator/api/swarm.js';
import { resultsSource } from '../../operator/cli/results-command.js';
import { KubeClient } from '../../operator/k8s/client.js';
import { resultDir } from '../../operator/results/stored-result.js';
import { freshNamespace, kubectl, operatorImage } from './kube.js';
import { dropResultsNamespace, hostPathPod, resultsVolume } from './results-volume.js';
import type { StoredResult } from '../../operator/results/stored-result.js';

jest.setTimeout(600_000);

const UID = 'e2e-shards-uid';
const record = (index: number, storedAt: string, pod: string): StoredResult => ({
  agentId: `agent-${index}`,
  index,
  status: index === 4 ? 'failed' : 'completed',
  exitCode: index === 4 ? 3 : 0,
  attempts: 1,
  durationMs: 10,
  output: `out ${index} from ${pod}\n`,
  outputBytes: `out ${index} from ${pod}\n`.length,
  outputTruncated: false,
  error: index === 4 ? 'exit 3' : null,
  version: 'v2',
  pod,
  storedAt,
});

/** Writes FILES (name -> content) into the run's directory of the hostPath volume at DIR, readable by the reader pod. */
async function writeRecords(ns: string, name: string, dir: string, path: string, files: Record<string, string>): Promise<void> {
  const writes = Object.entries(files).map(([file, text]) => `printf '%s' '${Buffer.from(text).toString('base64')}' | base64 -d > "/d/${path}/${file}"`);
  await hostPathPod(ns, `write-${name}`, dir, ['set -e', `mkdir -p "/d/${path}"`, ...writes, 'chmod -R a+rX /d'].join('\n'));
}

describe('results of a sharded swarm, on a real node', () => {
  it("every shard's claim read by its own reader pod, merged into one set by index, each index once", async () => {
    const ns = await freshNamespace('results-shards');
    const client = KubeClient.load(process.env.KUBECONFIG);
    try {
      const sw = swarmSchema.parse({
        apiVersion: 'swarm.cfn.dev/v1alpha1',
        kind: 'Swarm',
        metadata: { name: 'shd', namespace: ns, uid: UID },
        spec: { objective: 'shards', agents: 6, shards: 2, agent: { command: ['cat'] } },
      });
      const path = resultDir({ namespace: ns, name: 'shd', uid: UID }).replace(/\/$/, '');
      const dir0 = await resultsVolume(ns, 'shd-results-0');
      const dir1 = await resultsVolume(ns, 'shd-results-1');
      const t1 = '2026-12-04T12:00:00.000Z';
      const t2 = '2026-12-04T12:00:09.000Z';
      const json = (r: StoredResult) => `${JSON.stringify(r)}\n`;
      // Shard 0 (indexes 0-2), and an older record of 3; shard 1 (3-5) with the newer 3 and a file that is no record.
      await writeRecords(ns, 's0', dir0, path, {
        '0.json': json(record(0, t1, 'shd-v2-1-s0')),
        '1.json': json(record(1, t1, 'shd-v2-1-s0')),
        '2.json': json(record(2, t1, 'shd-v2-1-s0')),
        '3.json': json(record(3, t1, 'shd-v2-1-s0')),
      });
      await writeRecords(ns, 's1', dir1, path, {
        '3.json': json(record(3, t2, 'shd-v2-1-s1')),
        '4.json': json(record(4, t1, 'shd-v2-1-s1')),
        '5.json': json(record(5, t1, 'shd-v2-1-s1')),
        '9.json': 'not a record',
      });

      const image = await operatorImage();
      const source = resultsSource(sw, { client, image, timeoutMs: 180_000 });
      expect(source.where).toBe(`2 claims: pvc://shd-results-0/${path}/, pvc://shd-results-1/${path}/`);
      const read = await source.read();
      expect(read.results.map((r) => [r.index, r.pod])).toEqual([
        [0, 'shd-v2-1-s0'],
        [1, 'shd-v2-1-s0'],
        [2, 'shd-v2-1-s0'],
        [3, 'shd-v2-1-s1'],
        [4, 'shd-v2-1-s1'],
        [5, 'shd-v2-1-s1'],
      ]);
      expect(read.results.find((r) => r.index === 3)?.output).toBe('out 3 from shd-v2-1-s1\n');
      expect(read.duplicates).toBe(1);
      expect(read.unreadable).toHaveLength(1);
      expect(read.unreadable[0]!.key).toMatch(new RegExp(`^pvc://shd-results-1/${path}/: `));

      // One agent: its shard's claim holds it.
      const agent = await source.readAgent!(4);
      expect(agent.results.find((r) => r.index === 4)).toMatchObject({ status: 'failed', exitCode: 3, pod: 'shd-v2-1-s1' });
      // Every reader pod is gone.
      expect((await kubectl(['get', 'pods', '-n', ns, '-l', 'swarm.cfn.dev/results-of=shd', '-o', 'name'])).stdout.trim()).toBe('');
    } finally {
      await client.close();
      await dropResultsNamespace(ns);
    }
  });
});
