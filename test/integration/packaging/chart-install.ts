// Installs the chart for real (helm against the test's API server) and gives
// a kubeconfig holding a token of the chart's ServiceAccount.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CHART, helmBin, run } from '../../unit/packaging/tools.js';
import type { KubeClient } from '../../../operator/k8s/client.js';

export const helm = (args: readonly string[]): string => run(helmBin(), [...args, '--kubeconfig', process.env.KUBECONFIG ?? '']);

export function helmInstall(release: string, namespace: string, values: readonly string[] = [], verb: 'install' | 'upgrade' = 'install'): string {
  return helm([verb, release, CHART, '--namespace', namespace, '--wait=false', ...values.flatMap((v) => ['--set', v])]);
}

/** A kubeconfig with a fresh token of `namespace/sa` (like a pod's mounted one). */
export async function tokenKubeconfig(admin: KubeClient, namespace: string, sa: string, dir: string): Promise<string> {
  const tr = await admin.create<{ status: { token: string } }>(`/api/v1/namespaces/${namespace}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  });
  const cluster = admin.config.getCurrentCluster()!;
  const file = join(dir, `${namespace}-${sa}.kubeconfig`);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData ?? Buffer.from(readFileSync(cluster.caFile!)).toString('base64') } }],
      users: [{ name: sa, user: { token: tr.status.token } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: sa, namespace } }],
      'current-context': 'x',
    }),
  );
  return file;
}
