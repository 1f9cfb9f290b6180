import { describe, expect, it } from '@jest/globals';
import { swarmSpec } from '../../../operator/api/swarm.js';
import type { Swarm } from '../../../operator/api/swarm.js';
import { AGENT_CONTAINER, CHANNEL_DIR, LAUNCHER_INIT_CONTAINER, LAUNCHER_PATH, SLOTS_DIR, agentUids } from '../../../operator/swarm/agent-container.js';
import { coordinatorPod } from '../../../operator/swarm/coordinator-pod.js';

const spec = (agent: Record<string, unknown> = {}) => swarmSpec.parse({ objective: 'obj', agents: 2, agent: { command: ['cat'], ...agent } });
const swarmOf = (s: ReturnType<typeof spec>): Swarm => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name: 'sw', namespace: 'ns', uid: 'u1' },
  spec: s,
});

interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  restartPolicy?: string;
  env?: { name: string; value?: string }[];
  resources?: unknown;
  securityContext: Record<string, unknown>;
  volumeMounts: Mount[];
  imagePullPolicy?: string;
}

const podOf = (agent: Record<string, unknown> = {}, version: 'v1' | 'v2' = 'v2') => {
  const pod = coordinatorPod(swarmOf(spec(agent)), version, { image: 'operator:1', attempt: 1 });
  const podSpec = pod.spec as unknown as Omit<typeof pod.spec, 'initContainers'> & {
    initContainers?: Container[];
    imagePullSecrets?: unknown;
    runtimeClassName?: string;
    nodeSelector?: unknown;
    tolerations?: unknown;
    affinity?: unknown;
  };
  return { pod, podSpec, coordinator: pod.spec.containers[0] as unknown as Container, inits: podSpec.initContainers ?? [] };
};

describe('the coordinator pod: agents in their own container', () => {
  it("mounts no token but the coordinator container's projected one", () => {
    const { podSpec, coordinator, inits } = podOf();
    expect(podSpec.automountServiceAccountToken).toBe(false);
    const token = (podSpec.volumes as unknown as { name: string; projected?: { sources: Record<string, unknown>[] } }[]).find(
      (v) => v.name === 'coordinator-token',
    );
    expect(token?.projected?.sources[0]).toEqual({ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } });
    expect(coordinator.volumeMounts).toContainEqual({ name: 'coordinator-token', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true });
    for (const c of inits) expect(c.volumeMounts.map((m) => m.name)).not.toContain('coordinator-token');
  });

  it("runs the agent image (default: the operator image) with the copied static launcher, as its own non-root user, without the coordinator's volumes", () => {
    const { coordinator, inits } = podOf();
    expect(inits.map((c) => c.name)).toEqual([LAUNCHER_INIT_CONTAINER, AGENT_CONTAINER]);
    const [install, agent] = inits as [Container, Container];
    expect(install.image).toBe('operator:1');
    expect(install.command).toEqual(['cp', '/app/bash/native/launcher', LAUNCHER_PATH]);
    expect(agent).toMatchObject({
      image: 'operator:1',
      restartPolicy: 'Always',
      command: [LAUNCHER_PATH, 'serve', CHANNEL_DIR],
      imagePullPolicy: 'IfNotPresent',
    });
    expect(agent.securityContext).toMatchObject({
      runAsUser: 65533,
      runAsGroup: 65532,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(agent.volumeMounts).toEqual([
      { name: 'launcher', mountPath: '/cfn/bin', readOnly: true },
      { name: 'launch', mountPath: CHANNEL_DIR },
      { name: 'agent-tmp', mountPath: '/tmp' },
      { name: 'agent-work', mountPath: '/workspace' },
    ]);
    // The coordinator's tmpfs, results and tasks are not the agents'.
    expect(coordinator.volumeMounts.map((m) => m.name)).toEqual(expect.arrayContaining(['dshm', 'results', 'launch']));
    expect(coordinator.env).toContainEqual({ name: 'CFN_LAUNCHER_DIR', value: CHANNEL_DIR });
  });

  it('spec.agent: image, pull policy and secrets, env and resources, user, runtime class and placement reach the pod', () => {
    const tolerations = [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }];
    const affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] },
      },
    };
    const { podSpec, coordinator, inits } = podOf({
      image: 'team/agent:2',
      imagePullPolicy: 'Never',
      imagePullSecrets: [{ name: 'regcred' }],
      env: [{ name: 'MODEL', value: 'x' }],
      resources: { limits: { memory: '1Gi' } },
      securityContext: { runAsUser: 4242 },
      runtimeClassName: 'gvisor',
      nodeSelector: { pool: 'agents' },
      tolerations,
      affinity,
    });
    const agent = inits[1]!;
    expect(agent).toMatchObject({ image: 'team/agent:2', imagePullPolicy: 'Never', resources: { limits: { memory: '1Gi' } } });
    expect(agent.env).toContainEqual({ name: 'MODEL', value: 'x' });
    expect(agent.securityContext.runAsUser).toBe(4242);
    expect(coordinator.env?.map((e) => e.name)).not.toContain('MODEL');
    expect(coordinator.resources).toBeUndefined();
    expect(podSpec).toMatchObject({
      imagePullSecrets: [{ name: 'regcred' }],
      runtimeClassName: 'gvisor',
      nodeSelector: { pool: 'agents' },
      tolerations,
      affinity,
    });
  });

  it('runtimeClassName is left to the cluster when unset; the agent container has a PID namespace of its own (its launcher is PID 1)', () => {
    const { podSpec } = podOf();
    expect(podSpec).not.toHaveProperty('runtimeClassName');
    // The launcher, as PID 1 of the agent container, kills every process left there before it
    // takes a new connection; a shared namespace would also show agents the coordinator.
    expect(podSpec).not.toHaveProperty('shareProcessNamespace');
  });

  it('V1 pods run their agents the same way (V1 starts them through the launcher too)', () => {
    const { podSpec, coordinator, inits } = podOf({ env: [{ name: 'MODEL', value: 'x' }], runtimeClassName: 'kata' }, 'v1');
    expect(podSpec.runtimeClassName).toBe('kata');
    expect(inits.map((c) => c.name)).toEqual([LAUNCHER_INIT_CONTAINER, AGENT_CONTAINER]);
    expect(podSpec.automountServiceAccountToken).toBe(false);
    expect(coordinator.env).toContainEqual({ name: 'CFN_LAUNCHER_DIR', value: CHANNEL_DIR });
    expect(coordinator.env?.map((e) => e.name)).not.toContain('MODEL');
  });

  it("spec.agent.securityContext.runAsUser is never root nor the coordinator's user (schema)", () => {
    expect(() => spec({ securityContext: { runAsUser: 0 } })).toThrow();
    expect(spec({ securityContext: { runAsUser: 1000 } }).agent.securityContext?.runAsUser).toBe(1000);
  });
});

describe('spec.agent.isolation container: one agent container per concurrency slot', () => {
  const isolated = (agent: Record<string, unknown> = {}, version: 'v1' | 'v2' = 'v2') => podOf({ isolation: 'container', concurrency: 3, ...agent }, version);
  const volumeNames = (podSpec: ReturnType<typeof podOf>['podSpec']) =>
    (podSpec.volumes as unknown as { name: string; emptyDir?: unknown }[]).map((v) => v.name);

  it('leaves isolation shared (the default) as the one agent container', () => {
    // The pod's spec and labels (its created-at annotation is the clock's).
    expect([podOf().pod.spec, podOf().pod.metadata.labels]).toEqual([
      podOf({ isolation: 'shared' }).pod.spec,
      podOf({ isolation: 'shared' }).pod.metadata.labels,
    ]);
    expect(agentUids(spec().agent)).toEqual([65533]);
  });

  it('has slots agent-0 .. agent-<N-1>, each its own user, with the copied launcher in slot mode emptying /tmp and /workspace', () => {
    const { inits, podSpec } = isolated({ resources: { limits: { cpu: '1', memory: '1Gi' } } });
    expect(inits.map((c) => c.name)).toEqual([LAUNCHER_INIT_CONTAINER, `${AGENT_CONTAINER}-0`, `${AGENT_CONTAINER}-1`, `${AGENT_CONTAINER}-2`]);
    const slots = inits.slice(1);
    expect(slots.map((c) => c.securityContext.runAsUser)).toEqual([65533, 65534, 65535]);
    for (const c of slots) {
      expect(c.command).toEqual([LAUNCHER_PATH, 'serve', '--slot', '--wipe', '/tmp', '--wipe', '/workspace', CHANNEL_DIR]);
      expect(c.restartPolicy).toBe('Always');
      expect(c.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, runAsGroup: 65532, capabilities: { drop: ['ALL'] } });
      expect(c.securityContext.runAsUser).not.toBe(65532);
      // One agent's resources per slot.
      expect(c.resources).toEqual({ limits: { cpu: '1', memory: '1Gi' } });
    }
    expect(podSpec).not.toHaveProperty('shareProcessNamespace');
    expect(agentUids(spec({ isolation: 'container', concurrency: 2, securityContext: { runAsUser: 2000 } }).agent)).toEqual([2000, 2001]);
  });

  it("mounts slot k's channel, /tmp and /workspace in slot k only; the coordinator mounts every channel and nothing of the slots' files", () => {
    const { inits, coordinator, podSpec } = isolated();
    const names = volumeNames(podSpec);
    expect(names).not.toContain('launch');
    expect(names).not.toContain('agent-tmp');
    for (let k = 0; k < 3; k++) {
      for (const v of ['launch', 'tmp', 'work']) expect(names.filter((n) => n === `slot-${k}-${v}`)).toHaveLength(1);
      const mine = inits[k + 1]!.volumeMounts;
      expect(mine).toEqual([
        { name: 'launcher', mountPath: '/cfn/bin', readOnly: true },
        { name: `slot-${k}-launch`, mountPath: CHANNEL_DIR },
        { name: `slot-${k}-tmp`, mountPath: '/tmp' },
        { name: `slot-${k}-work`, mountPath: '/workspace' },
      ]);
      // No other container mounts anything of slot k but its channel in the coordinator.
      for (const [j, c] of inits.entries()) if (j !== k + 1) expect(c.volumeMounts.map((m) => m.name).filter((n) => n.startsWith(`slot-${k}-`))).toEqual([]);
      expect(coordinator.volumeMounts.filter((m) => m.name.startsWith(`slot-${k}-`))).toEqual([{ name: `slot-${k}-launch`, mountPath: `${SLOTS_DIR}/${k}` }]);
    }
    expect(coordinator.env).toContainEqual({ name: 'CFN_LAUNCHER_DIR', value: SLOTS_DIR });
    expect(coordinator.env).toContainEqual({ name: 'CFN_LAUNCHER_SLOTS', value: '3' });
  });

  it('V2 channels are memory-backed; the V1 pod has the same shape with channels on disk', () => {
    const v2 = volumeNames(isolated().podSpec);
    const v1 = isolated({}, 'v1');
    const vols = v1.podSpec.volumes as unknown as { name: string; emptyDir?: { medium?: string } }[];
    expect(vols.find((v) => v.name === 'slot-0-launch')?.emptyDir).toEqual({});
    expect(v1.inits.map((c) => c.name)).toEqual([LAUNCHER_INIT_CONTAINER, 'agent-0', 'agent-1', 'agent-2']);
    expect(v1.coordinator.env).toContainEqual({ name: 'CFN_LAUNCHER_SLOTS', value: '3' });
    expect(v2).toContain('slot-2-launch');
    const v2vols = isolated().podSpec.volumes as unknown as { name: string; emptyDir?: { medium?: string } }[];
    expect(v2vols.find((v) => v.name === 'slot-2-launch')?.emptyDir?.medium).toBe('Memory');
  });
});
