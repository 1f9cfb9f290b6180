// Jest global setup for the e2e project: a cluster with a real node, the
// project image, and the operator installed by the Helm chart.
// - E2E_KUBECONFIG set: that cluster is used as it is (kind: test/e2e/kind/run.sh
//   installs the chart first); nothing is started or stopped.
// - Otherwise test/e2e/setup.sh builds the image, brings up (or reuses) the
//   local instance "e2e" with its node and installs the chart. Teardown stops
//   it unless it was already running or E2E_KEEP=1.
// Self-contained: jest loads this file with Node's own resolver.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

const log = (msg: string): void => {
  process.stderr.write(`[e2e setup] ${msg}\n`);
};

function run(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`bash ${args.join(' ')} exited with ${code}`))));
  });
}

interface ProjectConfig {
  rootDir: string;
}

export default async function globalSetup(_globalConfig: unknown, projectConfig: ProjectConfig): Promise<void> {
  const root = projectConfig.rootDir;
  const external = process.env.E2E_KUBECONFIG;
  if (external) {
    process.env.KUBECONFIG = external;
    process.env.E2E_MODE = 'external';
    log(`using the cluster of E2E_KUBECONFIG=${external} as it is`);
    return;
  }
  const name = process.env.E2E_CLUSTER_NAME ?? 'e2e';
  const clusterScript = path.join(root, 'test/cluster/cluster.sh');
  const wasRunning = spawnSync('bash', [clusterScript, 'status', '--name', name], { stdio: 'ignore' }).status === 0;
  const started = Date.now();
  const nodes = process.env.E2E_NODES ?? '1';
  const args = [path.join(root, 'test/e2e/setup.sh'), '--name', name, '--nodes', nodes];
  if (process.env.E2E_SKIP_IMAGE_BUILD === '1') args.push('--skip-image-build');
  if (process.env.E2E_IMAGE_DIR) args.push('--image-dir', process.env.E2E_IMAGE_DIR);
  const out = await run(args);
  const kubeconfig = out.trim().split('\n').pop();
  if (!kubeconfig) throw new Error('setup.sh printed no kubeconfig path');
  process.env.KUBECONFIG = kubeconfig;
  process.env.E2E_MODE = 'local';
  process.env.E2E_STATE_DIR = path.dirname(kubeconfig);
  process.env.E2E_CLUSTER = name;
  if (!wasRunning && process.env.E2E_KEEP !== '1') process.env.E2E_TEARDOWN = name;
  log(
    `cluster ${name} with ${nodes} node(s) and operator ready in ${Date.now() - started} ms (${wasRunning ? 'reused' : 'started'}); KUBECONFIG=${kubeconfig}`,
  );
}
