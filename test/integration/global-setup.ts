// Jest global setup for the integration project: one local control plane per
// run (or the loopback cluster KUBECONFIG already points to), exported to the
// tests through KUBECONFIG. global-teardown.ts stops what this started.
// Self-contained on purpose: jest loads this file with Node's own resolver, so
// it cannot import the project's other .ts modules.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

const INSTANCE_PREFIX = 'jest-';
// Kept on globalThis: jest loads setup and teardown as separate modules.
const HANDLER_KEY = Symbol.for('swarm-operator.integration.signal-handler');
type SignalHandler = (signal: NodeJS.Signals) => void;
const handlerSlot = globalThis as unknown as Record<symbol, SignalHandler | undefined>;

const log = (msg: string): void => {
  process.stderr.write(`[integration setup] ${msg}\n`);
};

/** Runs a script with its stderr (progress lines) shown; resolves with stdout. */
function runVisible(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`bash ${args.join(' ')} exited with ${code}`));
    });
  });
}

function isLoopback(server: string): boolean {
  const host = new URL(server).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** True when the caller's KUBECONFIG names a loopback cluster whose /readyz answers. */
async function reusableCluster(): Promise<boolean> {
  if (!process.env.KUBECONFIG) return false;
  try {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    const server = kc.getCurrentCluster()?.server;
    if (!server) return false;
    if (!isLoopback(server)) {
      // Never run these tests against a remote cluster by accident.
      log(`KUBECONFIG points to ${server}, not loopback: starting a local cluster instead`);
      return false;
    }
    const opts: https.RequestOptions = { method: 'GET', timeout: 3_000 };
    await kc.applyToHTTPSOptions(opts);
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(new URL('/readyz', server), opts, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
    return status === 200;
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Instances named after a jest process: `jest-<pid>` (this setup's) and
 * `jest-<pid>-<suffix>` (extra ones tests start, e.g. lifecycle.test.ts).
 */
function jestInstances(stateRoot: string): Array<{ name: string; pid: number }> {
  let entries: string[];
  try {
    entries = readdirSync(stateRoot);
  } catch {
    return [];
  }
  const found: Array<{ name: string; pid: number }> = [];
  for (const entry of entries) {
    const m = /^cluster-(jest-(\d+)(?:-[a-z0-9-]+)?)$/.exec(entry);
    if (m?.[1] && m[2]) found.push({ name: m[1], pid: Number(m[2]) });
  }
  return found;
}

function stopInstance(clusterScript: string, name: string): void {
  spawnSync('bash', [clusterScript, 'down', '--name', name], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Stops instances left by integration runs that were killed before teardown. */
function stopStaleInstances(clusterScript: string, stateRoot: string): void {
  for (const { name, pid } of jestInstances(stateRoot)) {
    if (pid === process.pid || pidAlive(pid)) continue;
    log(`stopping stale instance ${name}`);
    stopInstance(clusterScript, name);
  }
}

interface ProjectConfig {
  rootDir: string;
}

export default async function globalSetup(_globalConfig: unknown, projectConfig: ProjectConfig): Promise<void> {
  if (await reusableCluster()) {
    log(`reusing the cluster KUBECONFIG=${process.env.KUBECONFIG} points to`);
    return;
  }
  const root = projectConfig.rootDir;
  const clusterScript = path.join(root, 'test/cluster/cluster.sh');
  const stateRoot = process.env.SWARM_CLUSTER_STATE_DIR ?? path.join(root, '.local');
  stopStaleInstances(clusterScript, stateRoot);
  // Cold builds take long; build.sh prints progress and reuses the cache.
  await runVisible([path.join(root, 'test/cluster/build.sh'), '--control-plane']);
  const name = `${INSTANCE_PREFIX}${process.pid}`;
  const started = Date.now();
  const out = await runVisible([clusterScript, 'up', '--name', name, '--port-base', 'auto']);
  const kubeconfig = out.trim().split('\n').pop();
  if (!kubeconfig) throw new Error('cluster.sh up printed no kubeconfig path');
  process.env.KUBECONFIG = kubeconfig;
  process.env.SWARM_TEST_CLUSTER_NAME = name;
  process.env.SWARM_TEST_CLUSTER_SCRIPT = clusterScript;
  log(`cluster ${name} up in ${Date.now() - started} ms; KUBECONFIG=${kubeconfig}`);
  // An interrupted run still stops its control plane and the extra instances
  // its tests started (their `up`, if still running, cleans up after itself).
  const handler: SignalHandler = (signal) => {
    try {
      for (const inst of jestInstances(stateRoot)) {
        if (inst.pid === process.pid) stopInstance(clusterScript, inst.name);
      }
    } finally {
      process.kill(process.pid, signal);
    }
  };
  handlerSlot[HANDLER_KEY] = handler;
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
