#!/usr/bin/env node
// Launcher: re-executes under Node >= 22.19 (installed by scripts/ensure-node.sh
// when the machine's Node is older), then runs the compiled CLI.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [major, minor] = process.versions.node.split('.').map(Number);

if (major < 22 || (major === 22 && minor < 19)) {
  const found = spawnSync('bash', [join(root, 'scripts/ensure-node.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (found.status !== 0) {
    console.error(`cfn: needs Node >= 22.19 (this is ${process.version}) and could not install one`);
    process.exit(1);
  }
  const node = join(found.stdout.trim(), 'node');
  // This launcher itself, not argv[1]: bin/kubectl-swarm.js runs it too.
  const child = spawnSync(node, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(child.status ?? 1);
}

// V1's memory uses node:sqlite, which prints an ExperimentalWarning on every
// run: drop that one warning, print every other as Node would.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'ExperimentalWarning' && /SQLite/i.test(warning.message)) return;
  process.stderr.write(`(node:${process.pid}) ${warning.name}: ${warning.message}\n`);
});

const main = join(root, 'dist/operator/cli/main.js');
if (!existsSync(main)) {
  console.error('cfn: not built yet; run `npm run build` (or `make build`) first');
  process.exit(1);
}
const { runCli } = await import(main);
process.exitCode = await runCli(process.argv.slice(2));
