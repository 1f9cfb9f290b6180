// Delivery is completed work, on a real node: Swarms whose agents fail in real
// coordinator pods end with the true delivery rate, and their phase follows
// spec.successPolicy; `cfn run` in a real pod exits non-zero at 0% delivery.
import { describe, expect, it, jest } from '@jest/globals';
import { z } from 'zod';
import { apply, dropNamespace, events, freshNamespace, getSwarm, indexSet, kubectl, kubectlJson, operatorImage, waitFor } from './kube.js';

const swarm = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: { objective: 'e2e delivery', topology: 'flat', ...spec },
});

/** Fails when AGENT_INDEX % 10 == 0 (exit 3), else completes. */
const TENTH_FAILS = ['sh', '-c', '[ $((AGENT_INDEX % 10)) -ne 0 ] || exit 3'];

const finished = (ns: string, name: string) =>
  waitFor(
    `${name} finished`,
    async () => {
      const s = await getSwarm(ns, name);
      return s.status?.phase === 'Succeeded' || s.status?.phase === 'Failed' ? s : undefined;
    },
    300_000,
    500,
  );

const conditionOf = (s: Awaited<ReturnType<typeof getSwarm>>, type: string) => s.status?.conditions?.find((c) => c.type === type);

// Real pods on a loaded machine: minutes, not seconds.
jest.setTimeout(900_000);

describe('delivery on a real node', () => {
  it('every agent failing: 0% delivery, phase Failed, condition Failed with the figures, a Warning event', async () => {
    const ns = await freshNamespace('all-fail');
    try {
      await apply(
        ns,
        swarm('all-fail', {
          agents: 20,
          coordination: { version: 'v2', fallbackTimeoutSeconds: 60 },
          agent: { command: ['false'], retries: 0, concurrency: 8 },
        }),
      );
      const s = await finished(ns, 'all-fail');
      const message = '0/20 agents completed, 20 failed: delivery 0% < 100% (spec.successPolicy.minDeliveryRate)';
      expect(s.status).toMatchObject({
        phase: 'Failed',
        activeVersion: 'v2',
        deliveryRate: 0,
        agents: { total: 20, completed: 0, failed: 20 },
        failedIndexes: '0-19',
      });
      expect(indexSet(s.status?.completedAgents).size).toBe(0);
      expect(conditionOf(s, 'Failed')).toMatchObject({ status: 'True', reason: 'DeliveryBelowSuccessPolicy', message });
      expect(conditionOf(s, 'Complete')).toBeUndefined();
      const ev = await waitFor('the event', async () =>
        (await events(ns)).find((e) => e.involvedObject.name === 'all-fail' && e.reason === 'DeliveryBelowSuccessPolicy'),
      );
      expect(ev).toMatchObject({ type: 'Warning', message });
    } finally {
      await dropNamespace(ns);
    }
  });

  it('10% of agents failing: exactly 90%; Succeeded under successPolicy.minDeliveryRate 90, Failed under the default (V2 and V1)', async () => {
    const ns = await freshNamespace('tenth');
    try {
      const agent = { command: TENTH_FAILS, retries: 0, concurrency: 8 };
      await apply(
        ns,
        swarm('ninety', { agents: 50, coordination: { version: 'v2', fallbackTimeoutSeconds: 60 }, agent, successPolicy: { minDeliveryRate: 90 } }),
      );
      await apply(ns, swarm('strict-v2', { agents: 50, coordination: { version: 'v2', fallbackTimeoutSeconds: 60 }, agent }));
      await apply(ns, swarm('strict-v1', { agents: 50, coordination: { version: 'v1' }, agent }));
      const failedIndexes = '0,10,20,30,40';
      const figures = '45/50 agents completed, 5 failed: delivery 90%';

      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/ninety', '--timeout=300s'], { timeoutMs: 310_000 });
      const ninety = await getSwarm(ns, 'ninety');
      expect(ninety.status).toMatchObject({
        phase: 'Succeeded',
        activeVersion: 'v2',
        deliveryRate: 90,
        agents: { total: 50, completed: 45, failed: 5 },
        failedIndexes,
      });
      expect(conditionOf(ninety, 'Complete')).toMatchObject({ status: 'True', message: `${figures} >= 90%` });
      expect(indexSet(ninety.status?.completedAgents).size).toBe(45);

      for (const [name, version] of [
        ['strict-v2', 'v2'],
        ['strict-v1', 'v1'],
      ] as const) {
        const s = await finished(ns, name);
        expect(s.status).toMatchObject({
          phase: 'Failed',
          activeVersion: version,
          deliveryRate: 90,
          agents: { total: 50, completed: 45, failed: 5 },
          failedIndexes,
        });
        expect(conditionOf(s, 'Failed')).toMatchObject({
          status: 'True',
          reason: 'DeliveryBelowSuccessPolicy',
          message: `${figures} < 100% (spec.successPolicy.minDeliveryRate)`,
        });
      }
    } finally {
      await dropNamespace(ns);
    }
  });

  it('cfn run in a real pod: every agent failing is deliveryRate 0, status failed, a non-zero exit', async () => {
    const ns = await freshNamespace('cfn-run');
    try {
      const image = await operatorImage();
      const restricted = {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      };
      await apply(ns, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'cfn-run' },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'cfn',
              image,
              imagePullPolicy: 'IfNotPresent',
              args: ['run', '--agents', '10', '--agent-command', 'false', '--retries', '0', '--version', 'v2', '--json'],
              env: [{ name: 'CFN_SHM_PATH', value: '/dev/shm/cfn' }],
              securityContext: restricted,
              volumeMounts: [
                { name: 'dshm', mountPath: '/dev/shm' },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
            { name: 'tmp', emptyDir: {} },
          ],
        },
      });
      const podSchema = z.object({
        status: z.object({
          phase: z.string().optional(),
          containerStatuses: z.array(z.object({ state: z.object({ terminated: z.object({ exitCode: z.number() }).optional() }) })).optional(),
        }),
      });
      const exitCode = await waitFor(
        'cfn run ended',
        async () => {
          const p = await kubectlJson(podSchema, ['get', 'pod', '-n', ns, 'cfn-run']);
          return p.status.phase === 'Failed' || p.status.phase === 'Succeeded' ? p.status.containerStatuses?.[0]?.state.terminated?.exitCode : undefined;
        },
        180_000,
        500,
      );
      expect(exitCode).toBe(1);
      const logs = (await kubectl(['logs', '-n', ns, 'cfn-run'])).stdout;
      const json = logs.split('\n').find((l) => l.startsWith('{'));
      expect(JSON.parse(json ?? '{}')).toMatchObject({
        status: 'failed',
        version: 'v2',
        agents: { total: 10, completed: 0, failed: 10 },
        deliveryRate: 0,
        throughputAgentsPerSec: 0,
      });
      expect(logs).toContain('cfn: 0/10 agents completed, 10 failed: delivery 0% < --min-delivery 100%');
    } finally {
      await dropNamespace(ns);
    }
  });
});
