// The image built without a registry (scripts/image/build.sh) loads into a
// real containerd with `ctr -n k8s.io images import` and runs: non-root,
// read-only root, the V2 engine's tools, a V2 swarm on /dev/shm, and the pause
// image stops on SIGTERM (scripts/image/verify.sh). Needs root, debootstrap,
// umoci, containerd (scripts/install-system-deps.sh); a cold build takes minutes.
import { describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { releaseVersion } from '../../../operator/util/release-version.js';
import { REPO } from '../../unit/packaging/tools.js';

jest.setTimeout(900_000);

const sh = (script: string, args: string[]) => {
  try {
    return execFileSync('bash', [join(REPO, script), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    throw new Error(`${script} failed: ${(e as { stderr?: string }).stderr ?? String(e)}`);
  }
};

describe('the swarm-operator image', () => {
  it('builds without image pulls, imports into containerd and runs', () => {
    const out = mkdtempSync(join(tmpdir(), 'pkg-image-'));
    const v = releaseVersion();
    try {
      const files = sh('scripts/image/build.sh', ['--out-dir', out]).trim().split('\n');
      expect(files).toEqual([join(out, `swarm-operator_${v}.oci.tar`), join(out, `swarm-operator-pause_${v}.oci.tar`)]);
      for (const f of files) expect(existsSync(f)).toBe(true);
      const index = JSON.parse(execFileSync('tar', ['-xOf', files[0]!, 'index.json'], { encoding: 'utf8' })) as {
        manifests: Array<{ annotations: Record<string, string> }>;
      };
      expect(index.manifests[0]!.annotations).toMatchObject({
        'io.containerd.image.name': `docker.io/library/swarm-operator:${v}`,
        'org.opencontainers.image.ref.name': v,
      });
      // An OCI image layout archive: what containerd's import reads.
      const entries = execFileSync('tar', ['-tf', files[0]!], { encoding: 'utf8' }).trim().split('\n');
      expect(entries.slice(0, 2)).toEqual(['oci-layout', 'index.json']);
      expect(JSON.parse(execFileSync('tar', ['-xOf', files[0]!, 'oci-layout'], { encoding: 'utf8' }))).toEqual({ imageLayoutVersion: '1.0.0' });
      expect(entries.filter((e) => e.startsWith('blobs/sha256/') && e !== 'blobs/sha256/').length).toBeGreaterThanOrEqual(4);
      sh('scripts/image/verify.sh', files);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
