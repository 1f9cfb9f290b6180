// Paths of the pinned helm and kubectl (test/cluster's cache) and a runner
// that fails with the tool's stderr.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const REPO = join(import.meta.dirname, '../../..');
export const CHART = join(REPO, 'charts/swarm-operator');

function binPath(name: string): string {
  const path = execFileSync('bash', ['-c', `source "${REPO}/test/cluster/lib.sh" && bin_path "$1"`, 'bin_path', name], { encoding: 'utf8' }).trim();
  // helm comes with the default build, kubectl with --all.
  if (!existsSync(path)) throw new Error(`${name} is not built (${path}): run bash test/cluster/build.sh${name === 'helm' ? '' : ' --all'}`);
  return path;
}

export const helmBin = (): string => binPath('helm');
export const kubectlBin = (): string => binPath('kubectl');

export function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

/** `helm template` of the chart, release swarm-operator in swarm-operator-system. */
export function helmTemplate(args: readonly string[] = []): string {
  return run(helmBin(), ['template', 'swarm-operator', CHART, '--namespace', 'swarm-operator-system', ...args]);
}
