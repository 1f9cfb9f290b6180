// The operator's watches survive an API server restart: on a dedicated
// control plane (so the shared one is not disturbed), kube-apiserver is
// stopped and started again with the same command line while the operator runs.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient } from '../../../operator/k8s/client.js';
import { createNamespace, installCrds, REPO, runOperator, scrape, swarmManifest, swarmPath, waitFor } from './harness.js';
import type { PodObject } from './harness.js';
import type { RunningOperator } from '../../../operator/manager/operator-manager.js';

const CLUSTER = join(REPO, 'test/cluster/cluster.sh');
const NAME = `watch-${process.pid}`;
let c: KubeClient;
let dir: string;
let op: RunningOperator | undefined;
let ns: string;

const cluster = (...args: string[]) =>
  execFileSync('bash', [CLUSTER, ...args, '--name', NAME], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

beforeAll(async () => {
  const kubeconfig = cluster('up', '--port-base', 'auto').split('\n').pop()!;
  dir = join(kubeconfig, '..');
  c = KubeClient.load(kubeconfig);
  await installCrds(c);
  ns = await createNamespace(c, 'watch');
  op = await runOperator({ client: c, namespaces: [ns] });
}, 180_000);

afterAll(async () => {
  await op?.stop();
  cluster('down');
});

const startTime = (pid: number): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]!;

async function restartApiserver(): Promise<void> {
  const pidFile = join(dir, 'kube-apiserver.pid');
  const pid = Number(readFileSync(pidFile, 'utf8').split(' ')[0]);
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const gone = () => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z') || undefined;
    } catch {
      return true;
    }
  };
  // A graceful stop drains watches for a long while; a crash is the harder case anyway.
  process.kill(pid, 'SIGTERM');
  await waitFor('apiserver exit', gone, 3000).catch(() => process.kill(pid, 'SIGKILL'));
  await waitFor('apiserver exit', gone, 10_000);
  await expect(c.get('/version')).rejects.toThrow();
  const log = openSync(join(dir, 'kube-apiserver.log'), 'a');
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  // Same bookkeeping as cluster.sh, so `down` stops this process too.
  writeFileSync(pidFile, `${child.pid} ${startTime(child.pid!)}\n`);
  await waitFor(
    'apiserver ready again',
    async () =>
      await c.get('/version').then(
        () => true,
        () => undefined,
      ),
    60_000,
    200,
  );
  // /version answers before every API path is installed: wait for the CRD's too.
  await waitFor(
    'swarms served again',
    async () =>
      await c.get(swarmPath(ns)).then(
        () => true,
        () => undefined,
      ),
    60_000,
    200,
  );
}

const pods = async () => (await c.get<{ items: PodObject[] }>(`/api/v1/namespaces/${ns}/pods`)).items;

describe('API server restart', () => {
  it('the operator keeps reconciling after kube-apiserver is restarted', async () => {
    await c.create(swarmPath(ns), swarmManifest(ns, 'before', { coordination: { version: 'v1' } }));
    await waitFor('pod before restart', async () => (await pods()).some((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === 'before') || undefined);
    await restartApiserver();
    // New object after the restart: only a live (restarted) watch sees it.
    await c.create(swarmPath(ns), swarmManifest(ns, 'after', { coordination: { version: 'v1' } }));
    await waitFor('pod after restart', async () => (await pods()).some((p) => p.metadata.labels['swarm.cfn.dev/swarm'] === 'after') || undefined, 60_000, 200);
    // And the pod watch too: a deleted coordinator is replaced.
    await c.delete(`/api/v1/namespaces/${ns}/pods/before-v1-1`, { gracePeriodSeconds: 0 });
    await waitFor('replacement', async () => (await pods()).some((p) => p.metadata.name === 'before-v1-2') || undefined, 60_000, 200);
    // Still ready, and the replacement is in status (the attempt counted once).
    expect(await scrape(op!.port, '/readyz')).toEqual({ status: 200, text: 'ok' });
    const status = async () => (await c.get<{ status?: { coordinatorAttempts?: number; coordinatorPod?: string } }>(swarmPath(ns, 'before'))).status;
    // Waits for every field asserted below; on a timeout the assertion shows what status holds.
    await waitFor('replacement in status', async () => {
      const s = await status();
      return s?.coordinatorPod === 'before-v1-2' && s.coordinatorAttempts === 2 ? true : undefined;
    }).catch(() => undefined);
    expect(await status()).toMatchObject({ coordinatorPod: 'before-v1-2', coordinatorAttempts: 2 });
  });
});
