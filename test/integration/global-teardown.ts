// Jest global teardown for the integration project: stops the control plane
// global-setup.ts started (a reused KUBECONFIG cluster is left running).
// Self-contained for the same reason as global-setup.ts.
import { spawnSync } from 'node:child_process';

const HANDLER_KEY = Symbol.for('swarm-operator.integration.signal-handler');
type SignalHandler = (signal: NodeJS.Signals) => void;
const handlerSlot = globalThis as unknown as Record<symbol, SignalHandler | undefined>;

export default function globalTeardown(): void {
  const handler = handlerSlot[HANDLER_KEY];
  if (handler) {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
    handlerSlot[HANDLER_KEY] = undefined;
  }
  const name = process.env.SWARM_TEST_CLUSTER_NAME;
  const script = process.env.SWARM_TEST_CLUSTER_SCRIPT;
  if (!name || !script) return;
  const r = spawnSync('bash', [script, 'down', '--name', name], { stdio: ['ignore', 'ignore', 'inherit'] });
  delete process.env.SWARM_TEST_CLUSTER_NAME;
  if (r.status !== 0) throw new Error(`stopping cluster ${name} failed (exit ${r.status})`);
}
