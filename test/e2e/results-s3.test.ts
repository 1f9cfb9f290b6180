// Results in an S3-compatible store on a real node: Versity's gateway runs on
// the host at the bridge's gateway address (pods reach the host there, see
// test/cluster/node.sh), the credentials come from a Secret mounted into the
// coordinator. The coordinator pod is force-deleted mid-run; the swarm still
// completes and the bucket holds exactly one intact record per agent index.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { S3Source } from '../../operator/results/s3-source.js';
import { startS3Server, type S3TestServer } from '../s3/s3-test-server.js';
import { MODE, REPO, apply, dropNamespace, freshNamespace, getSwarm, indexSet, kubectl, kubectlJson, waitFor } from './kube.js';
import { resultsStatusSchema } from './results-volume.js';

const AGENTS = 40;
/** The host's address on the single node's pod bridge (SINGLE_GATEWAY in test/cluster/node.sh). */
const HOST_ON_POD_BRIDGE = '10.244.0.1';
const PREFIX = 'e2e/';

jest.setTimeout(900_000);

const resultsStatus = z.object({
  metadata: z.object({ uid: z.string() }),
  status: z.object({ results: resultsStatusSchema }).optional(),
});

let server: S3TestServer | undefined;

/** Runs bin/cfn.js (the CLI of this work tree) against the e2e cluster. */
function cfn(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO, 'bin/cfn.js'), ...args],
      { env: process.env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

// The gateway listens on this machine's bridge: only with the local node (not E2E_KUBECONFIG).
const local = MODE === 'local' ? describe : describe.skip;

local('results in S3 on a real node', () => {
  beforeAll(() => {
    server = startS3Server({ address: HOST_ON_POD_BRIDGE, buckets: ['results'] });
  }, 300_000);

  afterAll(() => {
    server?.stop();
  });

  it('a force-deleted coordinator pod: the swarm completes, one intact object per agent index, status.results.stored == agents', async () => {
    const s3 = server!;
    const ns = await freshNamespace('s3');
    try {
      // stringData through stdin: the keys never appear on a command line.
      await apply(ns, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 's3-creds' },
        stringData: { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey },
      });
      await apply(ns, {
        apiVersion: 'swarm.cfn.dev/v1alpha1',
        kind: 'Swarm',
        metadata: { name: 'stored' },
        spec: {
          objective: 'e2e results in S3',
          agents: AGENTS,
          topology: 'flat',
          coordination: { version: 'v2', fallbackEnabled: true, fallbackTimeoutSeconds: 60 },
          agent: { command: ['sh', '-c', 'sleep 1; printf "answer %s\\n" "$AGENT_INDEX"'], timeoutSeconds: 60, retries: 0, concurrency: 4 },
          v2: { shmSizeLimit: '64Mi' },
          results: { type: 's3', s3: { endpoint: s3.endpoint, bucket: 'results', prefix: PREFIX, credentialsSecretRef: { name: 's3-creds' } } },
        },
      });
      const before = await waitFor(
        'some agents delivered',
        async () => {
          const s = await getSwarm(ns, 'stored');
          return (s.status?.agents?.completed ?? 0) >= 8 && s.status?.coordinatorPod ? s : undefined;
        },
        180_000,
        200,
      );
      expect(before.status).toMatchObject({ activeVersion: 'v2', coordinatorAttempts: 1 });
      expect(indexSet(before.status?.completedAgents).size).toBeLessThan(AGENTS);
      const pod = before.status?.coordinatorPod ?? '';
      // The credentials are a read-only file in the coordinator container, and in no environment.
      const mounted = await kubectlJson(
        z.object({
          spec: z.object({
            containers: z.array(
              z.object({
                env: z.array(z.object({ name: z.string() })).optional(),
                volumeMounts: z.array(z.object({ name: z.string(), mountPath: z.string(), readOnly: z.boolean().optional() })),
              }),
            ),
          }),
        }),
        ['get', 'pod', '-n', ns, pod],
      );
      expect(mounted.spec.containers[0]?.volumeMounts).toContainEqual({
        name: 's3-credentials',
        mountPath: '/var/run/secrets/swarm.cfn.dev/s3-credentials',
        readOnly: true,
      });
      expect(JSON.stringify(mounted.spec.containers[0]?.env ?? [])).not.toContain('AWS_');
      await kubectl(['delete', 'pod', '-n', ns, pod, '--grace-period=0', '--force']);
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/stored', '--timeout=300s'], { timeoutMs: 310_000 });

      const after = await getSwarm(ns, 'stored');
      expect(after.status).toMatchObject({
        phase: 'Succeeded',
        deliveryRate: 100,
        activeVersion: 'v2',
        agents: { total: AGENTS, completed: AGENTS, failed: 0 },
      });
      expect(after.status?.coordinatorAttempts).toBeGreaterThanOrEqual(2);
      expect(after.status?.fallback).toBeUndefined();
      const { metadata, status } = await kubectlJson(resultsStatus, ['get', 'swarm', '-n', ns, 'stored']);
      const runDir = `${PREFIX}${ns}/stored/${metadata.uid}/`;
      expect(status?.results).toMatchObject({ type: 's3', location: `s3://results/${runDir}`, stored: AGENTS });
      expect(status?.results?.lastError).toBeUndefined();

      // What the server holds on its disk: exactly one object per index.
      const files = readdirSync(join(s3.bucketDir('results'), runDir)).sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
      expect(files).toEqual(Array.from({ length: AGENTS }, (_, i) => `${i}.json`));
      // Read back through S3: every record intact, none unreadable.
      const source = new S3Source({
        config: {
          endpoint: s3.endpoint,
          bucket: 'results',
          prefix: PREFIX,
          region: s3.region,
          forcePathStyle: true,
          credentialsSecretRef: { name: 's3-creds', accessKeyIdKey: 'AWS_ACCESS_KEY_ID', secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY' },
        },
        scope: { namespace: ns, name: 'stored', uid: metadata.uid },
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      });
      const { results, unreadable } = await source.read();
      source.close();
      expect(unreadable).toEqual([]);
      expect(results.map((r) => [r.index, r.status, r.output])).toEqual(Array.from({ length: AGENTS }, (_, i) => [i, 'completed', `answer ${i}\n`]));
      expect(status?.results?.bytes).toBeGreaterThan(0);

      // cfn results after every pod of the swarm is gone: straight from the bucket, with the Swarm's Secret.
      await kubectl(['delete', 'pods', '-n', ns, '-l', 'swarm.cfn.dev/swarm=stored', '--wait=true', '--timeout=120s']);
      const cli = await cfn(['results', 'stored', '-n', ns]);
      expect(cli.code).toBe(0);
      const lines = cli.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { index: number; output: string });
      expect(lines.map((l) => [l.index, l.output])).toEqual(Array.from({ length: AGENTS }, (_, i) => [i, `answer ${i}\n`]));
      expect(cli.stderr).toContain(`s3://results/${runDir}`);
    } finally {
      await dropNamespace(ns);
    }
  });
});
