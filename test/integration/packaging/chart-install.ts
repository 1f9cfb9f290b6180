// Installs the chart for real (helm against the test's API server) and gives
// a kubeconfig holding a token of the chart's ServiceAccount.
import { CHART, helmBin, run } from '../../unit/packaging/tools.js';

export const helm = (args: readonly string[]): string => run(helmBin(), [...args, '--kubeconfig', process.env.KUBECONFIG ?? '']);

export function helmInstall(release: string, namespace: string, values: readonly string[] = [], verb: 'install' | 'upgrade' = 'install'): string {
  return helm([verb, release, CHART, '--namespace', namespace, '--wait=false', ...values.flatMap((v) => ['--set', v])]);
}

export { tokenKubeconfig } from '../operator/harness.js';
