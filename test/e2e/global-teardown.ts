// Stops the e2e cluster global-setup.ts started (kept with E2E_KEEP=1, or when
// it was already running). Self-contained for the same reason as the setup.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

interface ProjectConfig {
  rootDir: string;
}

export default function globalTeardown(_globalConfig: unknown, projectConfig: ProjectConfig): void {
  const name = process.env.E2E_TEARDOWN;
  if (!name) return;
  delete process.env.E2E_TEARDOWN;
  const r = spawnSync('bash', [path.join(projectConfig.rootDir, 'test/cluster/cluster.sh'), 'down', '--name', name], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`stopping e2e cluster ${name} failed (exit ${r.status})`);
  // cluster:down must leave no container, mount, bridge/veth, rule or process behind.
  const clean = spawnSync('bash', [path.join(projectConfig.rootDir, 'test/cluster/node.sh'), 'check-clean', '--name', name], { encoding: 'utf8' });
  if (clean.status !== 0) throw new Error(`e2e cluster ${name} left things behind:\n${clean.stderr}`);
}
