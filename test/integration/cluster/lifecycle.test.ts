// cluster.sh runs a second, independent instance on other ports next to the
// one the global setup started, and `down` leaves no process or port behind.
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from '@jest/globals';
import { VersionApi, KubeConfig } from '@kubernetes/client-node';
import { CLUSTER_SCRIPT, clusterStatus, loadKubeConfig, pidAlive, pinnedK8sVersion, portOpen, run, suffix } from './helpers.js';

describe('cluster.sh up/down', () => {
  // Named after this jest process, so an interrupted run's leftover is
  // stopped by the next run's global setup (see global-setup.ts).
  const name = `jest-${process.pid}-second-${suffix()}`;

  afterAll(async () => {
    // Only matters when an assertion failed between up and down.
    await run('bash', [CLUSTER_SCRIPT, 'down', '--name', name], 60_000);
  });

  it('rejects bad input with a clear error and starts nothing', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['up', '--name', 'Bad Name'], /bad --name/],
      [['up', '--name', `${name}-x`, '--port-base', '80'], /bad --port-base: 80/],
      [['up', '--name', `${name}-x`, '--port-base', '20000; rm -rf /'], /bad --port-base/],
      [['launch'], /unknown command: launch/],
      [['up', '--bogus'], /unknown argument: --bogus/],
    ];
    for (const [args, message] of cases) {
      const r = await run('bash', [CLUSTER_SCRIPT, ...args], 60_000);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
    const untouched = await clusterStatus(`${name}-x`);
    expect(untouched.components.every((c) => !c.running)).toBe(true);
    expect(existsSync(untouched.dir)).toBe(false);
  }, 120_000);

  it('brings up a second instance and tears it down completely', async () => {
    const up = await run('bash', [CLUSTER_SCRIPT, 'up', '--name', name, '--port-base', 'auto'], 300_000);
    expect(up.code).toBe(0);
    const kubeconfig = up.stdout.trim().split('\n').pop() ?? '';

    const status = await clusterStatus(name);
    expect(status.ready).toBe(true);
    expect(status.kubeconfig).toBe(kubeconfig);
    expect(status.components.map((c) => c.name)).toEqual(['etcd', 'kube-apiserver', 'kube-controller-manager']);
    const pids = status.components.map((c) => c.pid);
    const ports = Object.values(status.ports);
    for (const pid of pids) expect(pidAlive(pid)).toBe(true);

    // Independent of the run's main instance: other ports, its own API server.
    const main = loadKubeConfig().getCurrentCluster()?.server;
    const second = new KubeConfig();
    second.loadFromFile(kubeconfig);
    expect(second.getCurrentCluster()?.server).not.toBe(main);
    expect((await second.makeApiClient(VersionApi).getCode()).gitVersion).toBe(await pinnedK8sVersion());
    // The controller-manager port is served by its own process; etcd's peer
    // port too: all four are open while the instance runs.
    for (const port of ports) expect(await portOpen(port)).toBe(true);

    const down = await run('bash', [CLUSTER_SCRIPT, 'down', '--name', name], 60_000);
    expect(down.code).toBe(0);
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
    for (const port of ports) expect(await portOpen(port)).toBe(false);
    expect(existsSync(status.dir)).toBe(false);

    const after = await clusterStatus(name);
    expect(after.ready).toBe(false);
    expect(after.components.every((c) => !c.running)).toBe(true);

    // The main instance is untouched.
    expect((await loadKubeConfig().makeApiClient(VersionApi).getCode()).gitVersion).toBe(await pinnedK8sVersion());
  }, 300_000);
});
