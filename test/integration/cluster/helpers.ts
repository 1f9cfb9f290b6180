// Helpers for tests against the local control plane started by
// test/cluster/cluster.sh (see test/integration/global-setup.ts).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLUSTER_SCRIPT = path.join(REPO_ROOT, 'test/cluster/cluster.sh');
export const BUILD_SCRIPT = path.join(REPO_ROOT, 'test/cluster/build.sh');
const LIB_SCRIPT = path.join(REPO_ROOT, 'test/cluster/lib.sh');

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell; resolves with its exit code instead of throwing. */
export function run(cmd: string, args: readonly string[], timeoutMs = 600_000): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${cmd} ${args.join(' ')} failed to run: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err && typeof err.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

/** The Kubernetes version the cluster scripts pin (honours K8S_VERSION). */
export async function pinnedK8sVersion(): Promise<string> {
  const r = await run('bash', ['-c', 'source "$1" && printf %s "$K8S_VERSION"', '_', LIB_SCRIPT]);
  if (r.code !== 0 || !/^v\d+\.\d+\.\d+$/.test(r.stdout)) {
    throw new Error(`cannot read the pinned version from ${LIB_SCRIPT}: ${r.stderr}`);
  }
  return r.stdout;
}

const componentSchema = z.object({ name: z.string(), pid: z.number().int(), running: z.boolean() });
export const clusterStatusSchema = z.object({
  name: z.string(),
  dir: z.string(),
  kubeconfig: z.string(),
  ready: z.boolean(),
  ports: z.object({
    apiserver: z.number().int(),
    etcd: z.number().int(),
    etcdPeer: z.number().int(),
    controllerManager: z.number().int(),
  }),
  components: z.array(componentSchema),
});
export type ClusterStatus = z.infer<typeof clusterStatusSchema>;

export async function clusterStatus(name: string): Promise<ClusterStatus> {
  const r = await run('bash', [CLUSTER_SCRIPT, 'status', '--name', name, '--json'], 30_000);
  // Exit 3 means "not ready" and still prints the status.
  if (r.code !== 0 && r.code !== 3) throw new Error(`cluster status failed (${r.code}): ${r.stderr}`);
  return clusterStatusSchema.parse(JSON.parse(r.stdout));
}

export function loadKubeConfig(): KubeConfig {
  if (!process.env.KUBECONFIG) {
    throw new Error('KUBECONFIG is not set: run the integration project (its global setup starts a cluster)');
  }
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

/** True when the kubeconfig's current server is on this machine's loopback. */
export function isLoopbackServer(kc: KubeConfig): boolean {
  const server = kc.getCurrentCluster()?.server;
  if (!server) return false;
  const host = new URL(server).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** GET a raw path (e.g. /readyz) with the kubeconfig's credentials. */
export async function rawGet(kc: KubeConfig, urlPath: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('kubeconfig has no current cluster');
  const url = new URL(urlPath, server);
  const opts: https.RequestOptions = { method: 'GET', timeout: timeoutMs };
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = https.request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url.href} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The HTTP status of a client-node ApiException (undefined for other errors). */
export function apiStatus(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number') return err.code;
  return undefined;
}

/** Polls `check` until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * True when process `pid` exists and has not exited. A zombie (exited, not yet
 * reaped by its parent — here often PID 1, which reaps orphans slowly) holds
 * no ports or files and counts as exited.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false; // gone between the two checks
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (open: boolean): void => {
      sock.destroy();
      resolve(open);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** A short random suffix for names that must not collide between runs. */
export function suffix(): string {
  return Math.random().toString(36).slice(2, 8);
}
