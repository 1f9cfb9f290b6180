// The verdict of the real kstatus library (sigs.k8s.io/cli-utils, what Flux
// and kpt use) on objects: test/tools/kstatus, built once and cached.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from '../operator/harness.js';

export interface KstatusVerdict {
  kind: string;
  namespace?: string;
  name: string;
  status: 'InProgress' | 'Failed' | 'Current' | 'Terminating' | 'Unknown' | 'NotFound';
  message: string;
}

let binary: string | undefined;

/** Builds the helper on first use (cached under ~/.cache/swarm-operator); its path. */
export function kstatusBinary(): string {
  binary ??= execFileSync('bash', [join(REPO, 'test/tools/kstatus/build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  return binary;
}

/** kstatus' verdict for each object, in order. */
export function kstatus(objects: readonly object[]): KstatusVerdict[] {
  const out = execFileSync(kstatusBinary(), [], { input: objects.map((o) => JSON.stringify(o)).join('\n'), encoding: 'utf8' });
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as KstatusVerdict);
}
