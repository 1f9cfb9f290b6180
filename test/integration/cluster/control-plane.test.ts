// The control plane from the integration global setup answers /readyz and
// reports the Kubernetes version test/cluster/lib.sh pins.
import { describe, expect, it } from '@jest/globals';
import { VersionApi } from '@kubernetes/client-node';
import { loadKubeConfig, pinnedK8sVersion, rawGet } from './helpers.js';

describe('local control plane', () => {
  const kc = loadKubeConfig();

  it('answers /readyz with ok', async () => {
    const res = await rawGet(kc, '/readyz');
    expect(res.status).toBe(200);
    expect(res.body.trim()).toBe('ok');
  });

  it('lists every readiness check as passing, etcd included', async () => {
    const res = await rawGet(kc, '/readyz?verbose');
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/\[\+\]etcd ok/);
    expect(res.body).not.toMatch(/\[-\]/);
  });

  it('reports the pinned version, not v0.0.0', async () => {
    const pinned = await pinnedK8sVersion();
    const info = await kc.makeApiClient(VersionApi).getCode();
    expect(info.gitVersion).toBe(pinned);
    const [, minor] = /^v1\.(\d+)\./.exec(pinned) ?? [];
    expect(info.major).toBe('1');
    expect(info.minor).toBe(minor);
  });
});
