// Which kubeconfig `cfn operator` runs against: a pure function of the
// environment and of which files exist.
import { describe, expect, it } from '@jest/globals';
import { chooseKubeconfig, localControlPlaneKubeconfig } from '../../../operator/k8s/client.js';

const REPO = '/src/swarm-operator';
const LOCAL = '/src/swarm-operator/.local/cluster/kubeconfig';
const HOME_CONFIG = '/home/dev/.kube/config';
const files =
  (...present: string[]) =>
  (p: string) =>
    present.includes(p);

describe('chooseKubeconfig', () => {
  it('uses the local control plane kubeconfig when KUBECONFIG is unset, outside a cluster, and cluster:up wrote it', () => {
    expect(chooseKubeconfig({ env: { HOME: '/home/dev' }, repoRoot: REPO, existsSync: files(LOCAL, HOME_CONFIG) })).toEqual({
      path: LOCAL,
      source: 'local control plane',
      description: LOCAL,
    });
  });

  it('keeps the default (~/.kube/config) when the local control plane kubeconfig does not exist', () => {
    expect(chooseKubeconfig({ env: { HOME: '/home/dev' }, repoRoot: REPO, existsSync: files(HOME_CONFIG) })).toEqual({
      path: undefined,
      source: 'default',
      description: HOME_CONFIG,
    });
  });

  it('never takes the local kubeconfig inside a cluster (KUBERNETES_SERVICE_HOST set)', () => {
    expect(chooseKubeconfig({ env: { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, repoRoot: REPO, existsSync: files(LOCAL) })).toEqual({
      path: undefined,
      source: 'default',
      description: 'in-cluster service account',
    });
    // In a cluster with a ~/.kube/config, client-node's default reads that file first.
    expect(
      chooseKubeconfig({ env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', HOME: '/home/dev' }, repoRoot: REPO, existsSync: files(LOCAL, HOME_CONFIG) }),
    ).toMatchObject({
      path: undefined,
      description: HOME_CONFIG,
    });
  });

  it('KUBECONFIG beats the local control plane (a list is kept whole)', () => {
    expect(chooseKubeconfig({ env: { KUBECONFIG: '/tmp/a:/tmp/b' }, repoRoot: REPO, existsSync: files(LOCAL) })).toEqual({
      path: '/tmp/a:/tmp/b',
      source: 'KUBECONFIG',
      description: '/tmp/a:/tmp/b',
    });
  });

  it('an empty KUBECONFIG counts as unset', () => {
    expect(chooseKubeconfig({ env: { KUBECONFIG: '' }, repoRoot: REPO, existsSync: files(LOCAL) }).source).toBe('local control plane');
  });

  it('--kubeconfig beats everything', () => {
    expect(chooseKubeconfig({ flag: '/etc/k.yaml', env: { KUBECONFIG: '/tmp/a' }, repoRoot: REPO, existsSync: files(LOCAL) })).toEqual({
      path: '/etc/k.yaml',
      source: '--kubeconfig',
      description: '/etc/k.yaml',
    });
  });

  it('follows SWARM_CLUSTER_STATE_DIR as cluster.sh does', () => {
    expect(localControlPlaneKubeconfig(REPO, {})).toBe(LOCAL);
    expect(localControlPlaneKubeconfig(REPO, { SWARM_CLUSTER_STATE_DIR: '/var/tmp/state' })).toBe('/var/tmp/state/cluster/kubeconfig');
    expect(
      chooseKubeconfig({ env: { SWARM_CLUSTER_STATE_DIR: '/var/tmp/state' }, repoRoot: REPO, existsSync: files(LOCAL, '/var/tmp/state/cluster/kubeconfig') })
        .path,
    ).toBe('/var/tmp/state/cluster/kubeconfig');
  });

  it('says so when there is nothing to load', () => {
    expect(chooseKubeconfig({ env: {}, repoRoot: REPO, existsSync: files() })).toEqual({
      path: undefined,
      source: 'default',
      description: 'none found (~/.kube/config missing, not in a cluster)',
    });
  });
});
