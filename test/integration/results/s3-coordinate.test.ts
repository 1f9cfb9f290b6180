// `cfn coordinate` storing results in a real S3-compatible server: the test
// plays the kubelet (runs the coordinator pod's command as a local process
// with the pod's env and its own ServiceAccount token, and projects the
// pod's Secret volume items into a directory), the operator runs for real.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Source } from '../../../operator/results/s3-source.js';
import { S3_CREDENTIALS_VOLUME } from '../../../operator/results/s3-credentials.js';
import { startS3Server, type S3TestServer } from '../../s3/s3-test-server.js';
import {
  client,
  createNamespace,
  deleteNamespace,
  getSwarm,
  installCrds,
  listPods,
  podRunning,
  podTerminated,
  REPO,
  runOperator,
  runPodCommandHere,
  setPodStatus,
  swarmManifest,
  swarmPath,
  tokenKubeconfig,
  waitFor,
  type PodObject,
} from '../operator/harness.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';

const c = client();
let ns: string;
let op: RunningOperator;
let server: S3TestServer;
const work = mkdtempSync(join(tmpdir(), 'cfn-s3-coordinate-'));

beforeAll(async () => {
  server = startS3Server({ buckets: ['results'] });
  await installCrds(c);
  ns = await createNamespace(c, 's3-coordinate');
  op = await runOperator({ namespaces: [ns] });
  await c.create(`/api/v1/namespaces/${ns}/secrets`, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 's3-creds' },
    stringData: { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, unrelated: 'not mounted' },
  });
}, 300_000);

afterAll(async () => {
  await op?.stop();
  await deleteNamespace(c, ns);
  server?.stop();
  rmSync(work, { recursive: true, force: true });
});

const s3Spec = (secret = 's3-creds') => ({
  type: 's3',
  s3: { endpoint: server.endpoint, bucket: 'results', prefix: 'it/', credentialsSecretRef: { name: secret } },
});

interface SecretVolume {
  name: string;
  secret?: { secretName: string; optional?: boolean; items: Array<{ key: string; path: string }> };
}

/** What the kubelet mounts for the pod's Secret volume: each item's key as its path (none when the Secret or key is missing: optional). */
async function mountSecret(pod: PodObject): Promise<string> {
  const vol = (pod.spec as unknown as { volumes: SecretVolume[] }).volumes.find((v) => v.name === S3_CREDENTIALS_VOLUME);
  const dir = mkdtempSync(join(work, 's3-credentials-'));
  if (!vol?.secret) return dir;
  const secret = await c.get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${ns}/secrets/${vol.secret.secretName}`).catch(() => undefined);
  for (const item of vol.secret.items) {
    const b64 = secret?.data?.[item.key];
    if (b64 !== undefined) writeFileSync(join(dir, item.path), Buffer.from(b64, 'base64'));
  }
  return dir;
}

/** Runs the pod's container command here (runPodCommandHere), with its Secret "mounted". */
async function runPodCommand(pod: PodObject) {
  return runPodCommandHere(pod, {
    work,
    shm: `/dev/shm/cfn-s3-it-${process.pid}`,
    kubeconfig: await tokenKubeconfig(c, ns, pod.spec.serviceAccountName, work),
    // The downward API's metadata.name.
    env: { CFN_S3_CREDENTIALS_DIR: await mountSecret(pod), POD_NAME: pod.metadata.name },
  });
}

/** `cfn ARGS` with the admin kubeconfig of the test cluster. */
function cfn(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO, 'bin/cfn.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: work, KUBECONFIG: process.env.KUBECONFIG ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const podOf = async (name: string, attempt: number) =>
  (await listPods(c, ns)).find((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === name && p.metadata.labels['swarm.cfn.dev/attempt'] === String(attempt));

describe('cfn coordinate with results in S3', () => {
  it('stores each record as it arrives; a coordinator killed mid-run is replaced; exactly one intact object per index, status.results.stored == agents', async () => {
    const agents = 24;
    const agent = ['sh', '-c', 'sleep 0.2; printf "answer %s\\n" "$AGENT_INDEX"'];
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, 'in-s3', { agents, coordination: { version: 'v1' }, agent: { command: agent, concurrency: 2 }, results: s3Spec() }),
    );
    const pod = await waitFor('pod', () => podOf('in-s3', 1));
    const vol = (pod.spec as unknown as { volumes: SecretVolume[] }).volumes.find((v) => v.name === S3_CREDENTIALS_VOLUME);
    expect(vol?.secret).toMatchObject({ secretName: 's3-creds', optional: true });
    expect(JSON.stringify(pod.spec.containers[0]!.env)).not.toContain(server.secretAccessKey);
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    const first = await runPodCommand(pod);
    const sw = await getSwarm(c, ns, 'in-s3');
    const runDir = `it/${ns}/in-s3/${sw.metadata.uid}/`;
    // Stored as they arrive: objects are in the bucket while the run goes on.
    await waitFor('records stored mid-run', async () => ((await getSwarm(c, ns, 'in-s3')).status?.agents?.completed ?? 0) >= 6, 30_000, 100);
    expect(readdirSync(join(server.bucketDir('results'), runDir)).length).toBeGreaterThanOrEqual(6);
    first.child.kill('SIGKILL');
    await first.done;
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Failed', 137, undefined, 'OOMKilled'));
    const replacement = await waitFor('replacement', () => podOf('in-s3', 2));
    await setPodStatus(c, ns, replacement.metadata.name, podRunning(true));
    expect(await (await runPodCommand(replacement)).done).toBe(0);

    const files = readdirSync(join(server.bucketDir('results'), runDir)).sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
    expect(files).toEqual(Array.from({ length: agents }, (_, i) => `${i}.json`));
    const source = new S3Source({
      config: {
        endpoint: server.endpoint,
        bucket: 'results',
        prefix: 'it/',
        region: server.region,
        forcePathStyle: true,
        credentialsSecretRef: { name: 's3-creds', accessKeyIdKey: 'AWS_ACCESS_KEY_ID', secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY' },
      },
      scope: { namespace: ns, name: 'in-s3', uid: sw.metadata.uid },
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    const { results, unreadable } = await source.read();
    source.close();
    expect(unreadable).toEqual([]);
    expect(results.map((r) => [r.index, r.status, r.output])).toEqual(Array.from({ length: agents }, (_, i) => [i, 'completed', `answer ${i}\n`]));
    expect(new Set(results.map((r) => r.pod))).toEqual(new Set([pod.metadata.name, replacement.metadata.name]));

    await setPodStatus(c, ns, replacement.metadata.name, podTerminated('Succeeded', 0));
    const done = await waitFor('Succeeded', async () => {
      const s = await getSwarm(c, ns, 'in-s3');
      return s.status?.phase === 'Succeeded' ? s : undefined;
    });
    expect(done.status).toMatchObject({ deliveryRate: 100, agents: { total: agents, completed: agents } });
    const status = (done.status as { results?: Record<string, unknown> }).results;
    expect(status).toMatchObject({ type: 's3', location: `s3://results/${runDir}`, stored: agents, pending: 0 });
    expect(status?.lastError).toBeUndefined();

    // cfn results, after the pods: straight from the bucket with the Swarm's Secret (read with the admin's access).
    const cli = await cfn(['results', 'in-s3', '-n', ns]);
    expect(cli.code).toBe(0);
    const lines = cli.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; output: string });
    expect(lines.map((l) => [l.index, l.output])).toEqual(Array.from({ length: agents }, (_, i) => [i, `answer ${i}\n`]));
    expect(cli.stderr).toContain(`s3://results/${runDir}`);
    const one = await cfn(['results', 'in-s3', '-n', ns, '--agent', '7']);
    expect([one.code, one.stdout]).toEqual([0, 'answer 7\n']);
    // A reader key of its own in env wins; a wrong one is a clear error naming the store, exit 1.
    const wrong = await cfn(['results', 'in-s3', '-n', ns], { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`cfn results: S3 credentials refused by ${server.endpoint} for bucket "results" (listing ${runDir})`);
  }, 120_000);

  it('a missing Secret: the swarm fails naming the Secret and the field, no agent runs, no fallback', async () => {
    await c.create(
      swarmPath(ns),
      swarmManifest(ns, 'no-secret', { agents: 2, coordination: { version: 'v2' }, agent: { command: ['sh', '-c', 'echo ran'] }, results: s3Spec('absent') }),
    );
    const pod = await waitFor('pod', () => podOf('no-secret', 1));
    await setPodStatus(c, ns, pod.metadata.name, podRunning(true));
    expect(await (await runPodCommand(pod)).done).toBe(0);
    await setPodStatus(c, ns, pod.metadata.name, podTerminated('Succeeded', 0));
    const sw = await waitFor('Failed', async () => {
      const s = await getSwarm(c, ns, 'no-secret');
      return s.status?.phase === 'Failed' ? s : undefined;
    });
    expect(sw.status?.conditions?.find((x) => x.type === 'Failed')?.message).toContain(
      'results: S3 credentials: Secret "absent" does not exist in the Swarm\'s namespace or has no key "AWS_ACCESS_KEY_ID" (spec.results.s3.credentialsSecretRef)',
    );
    expect(sw.status?.fallback).toBeUndefined();
    expect(sw.status?.agents?.completed ?? 0).toBe(0);
  }, 60_000);
});
