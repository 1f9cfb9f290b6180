// The agents' side of a coordinator pod (V2 and V1): the agent container (spec.agent.image)
// runs the static agent launcher that an init container copies in (the way
// Tekton's entrypoint and Argo's emissary reach into a user image), serving the
// channel the coordinator's relays write to (docs/v2-engine.md "Who runs an
// agent"). Agents run there as their own user, without any API credential:
// the pod mounts no token, the coordinator container alone mounts a projected
// ServiceAccount token.
import { AGENT_UID_DEFAULT, COORDINATOR_UID } from '../api/swarm.js';
import type { Swarm } from '../api/swarm.js';

export const AGENT_CONTAINER = 'agent';
export const LAUNCHER_INIT_CONTAINER = 'install-launcher';
/** Where the operator image has the launcher, and where the agent container finds its copy. */
export const LAUNCHER_IN_IMAGE = '/app/bash/native/launcher';
export const LAUNCHER_DIR = '/cfn/bin';
export const LAUNCHER_PATH = `${LAUNCHER_DIR}/launcher`;
/** The channel: a memory-backed volume both containers mount (CFN_LAUNCHER_DIR of the coordinator). */
export const CHANNEL_DIR = '/cfn/launch';
/** The agents' working directory and /tmp: their own volumes, nothing shared. */
export const AGENT_WORKDIR = '/workspace';
/** isolation container: where the coordinator mounts slot k's channel (CFN_LAUNCHER_DIR/k). */
export const SLOTS_DIR = '/cfn/slots';
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const TOKEN_SECONDS = 3607;

/** The restricted Pod Security Standard of every container of the pod. */
export const restrictedSecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

export interface AgentSide {
  volumes: object[];
  initContainers: object[];
  /** Mounts and environment the coordinator container adds. */
  coordinatorMounts: object[];
  coordinatorEnv: object[];
  /** Pod-level fields from spec.agent (pull secrets, runtime class, placement). */
  podFields: Record<string, unknown>;
}

/** The coordinator's API credential: a projected ServiceAccount token, mounted in its container only. */
function tokenVolume(): object {
  return {
    name: 'coordinator-token',
    projected: {
      defaultMode: 0o440,
      sources: [
        { serviceAccountToken: { path: 'token', expirationSeconds: TOKEN_SECONDS } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}

/**
 * The agents' side of the pod; the channel is memory-backed (shmSizeLimit)
 * for V2, on the node's disk for V1 (a fallback from a broken tmpfs uses none).
 */
export function agentSide(swarm: Swarm, image: string, shmSizeLimit?: string | number): AgentSide {
  const agent = swarm.spec.agent;
  const channel = { emptyDir: shmSizeLimit === undefined ? {} : { medium: 'Memory', sizeLimit: String(shmSizeLimit) } };
  if (agent.isolation === 'container') return slotSide(swarm, image, channel);
  const agentUid = agent.securityContext?.runAsUser ?? AGENT_UID_DEFAULT;
  const volumes = [
    tokenVolume(),
    { name: 'launcher', emptyDir: {} },
    { name: 'launch', ...channel },
    { name: 'agent-tmp', emptyDir: {} },
    { name: 'agent-work', emptyDir: {} },
  ];
  // A native sidecar (an init container that keeps running): it starts before
  // the coordinator and ends when the coordinator has, so the pod completes.
  const agentContainer = {
    name: AGENT_CONTAINER,
    image: agent.image ?? image,
    imagePullPolicy: agent.imagePullPolicy ?? 'IfNotPresent',
    restartPolicy: 'Always',
    command: [LAUNCHER_PATH, 'serve', CHANNEL_DIR],
    workingDir: AGENT_WORKDIR,
    env: [{ name: 'HOME', value: AGENT_WORKDIR }, { name: 'TMPDIR', value: '/tmp' }, ...(agent.env ?? [])],
    ...(agent.resources ? { resources: agent.resources } : {}),
    // Its own user; the pod's group (fsGroup) opens the channel to it, the
    // coordinator's files stay its own (mode 0700).
    securityContext: { ...restrictedSecurityContext, runAsUser: agentUid, runAsGroup: COORDINATOR_UID },
    volumeMounts: [
      { name: 'launcher', mountPath: LAUNCHER_DIR, readOnly: true },
      { name: 'launch', mountPath: CHANNEL_DIR },
      { name: 'agent-tmp', mountPath: '/tmp' },
      { name: 'agent-work', mountPath: AGENT_WORKDIR },
    ],
  };
  return {
    volumes,
    initContainers: [installLauncher(image), agentContainer],
    coordinatorMounts: [
      { name: 'coordinator-token', mountPath: SERVICE_ACCOUNT_DIR, readOnly: true },
      { name: 'launch', mountPath: CHANNEL_DIR },
    ],
    coordinatorEnv: [{ name: 'CFN_LAUNCHER_DIR', value: CHANNEL_DIR }],
    podFields: podFields(swarm),
  };
}

/** The users of a pod's agent containers: one (isolation shared), or base + k for slot k (isolation container). */
export function agentUids(agent: Swarm['spec']['agent']): number[] {
  const base = agent.securityContext?.runAsUser ?? AGENT_UID_DEFAULT;
  return agent.isolation === 'container' ? Array.from({ length: agent.concurrency }, (_, k) => base + k) : [base];
}

/**
 * isolation container: one agent container per concurrency slot (agent-<k>),
 * each with its own user, /tmp, /workspace and channel, in its own PID
 * namespace (the pod shares none). Slot k's channel is mounted in slot k and
 * the coordinator only, so no slot reaches another's launcher; the launcher
 * runs one agent at a time there and leaves nothing of it for the next
 * (serve --slot: its processes killed, /tmp and /workspace emptied).
 */
function slotSide(swarm: Swarm, image: string, channel: object): AgentSide {
  const agent = swarm.spec.agent;
  const volumes: object[] = [tokenVolume(), { name: 'launcher', emptyDir: {} }];
  const containers: object[] = [installLauncher(image)];
  const coordinatorMounts: object[] = [{ name: 'coordinator-token', mountPath: SERVICE_ACCOUNT_DIR, readOnly: true }];
  agentUids(agent).forEach((uid, k) => {
    const [launch, tmp, work] = [`slot-${k}-launch`, `slot-${k}-tmp`, `slot-${k}-work`];
    volumes.push({ name: launch, ...channel }, { name: tmp, emptyDir: {} }, { name: work, emptyDir: {} });
    containers.push({
      name: `${AGENT_CONTAINER}-${k}`,
      image: agent.image ?? image,
      imagePullPolicy: agent.imagePullPolicy ?? 'IfNotPresent',
      restartPolicy: 'Always',
      command: [LAUNCHER_PATH, 'serve', '--slot', '--wipe', '/tmp', '--wipe', AGENT_WORKDIR, CHANNEL_DIR],
      workingDir: AGENT_WORKDIR,
      env: [{ name: 'HOME', value: AGENT_WORKDIR }, { name: 'TMPDIR', value: '/tmp' }, ...(agent.env ?? [])],
      // One agent's resources: a slot runs one agent at a time.
      ...(agent.resources ? { resources: agent.resources } : {}),
      securityContext: { ...restrictedSecurityContext, runAsUser: uid, runAsGroup: COORDINATOR_UID },
      volumeMounts: [
        { name: 'launcher', mountPath: LAUNCHER_DIR, readOnly: true },
        { name: launch, mountPath: CHANNEL_DIR },
        { name: tmp, mountPath: '/tmp' },
        { name: work, mountPath: AGENT_WORKDIR },
      ],
    });
    coordinatorMounts.push({ name: launch, mountPath: `${SLOTS_DIR}/${k}` });
  });
  return {
    volumes,
    initContainers: containers,
    coordinatorMounts,
    coordinatorEnv: [
      { name: 'CFN_LAUNCHER_DIR', value: SLOTS_DIR },
      { name: 'CFN_LAUNCHER_SLOTS', value: String(agent.concurrency) },
    ],
    podFields: podFields(swarm),
  };
}

/** The init container that copies the static launcher into the pod, where the agent containers run it. */
function installLauncher(image: string): object {
  return {
    name: LAUNCHER_INIT_CONTAINER,
    image,
    command: ['cp', LAUNCHER_IN_IMAGE, LAUNCHER_PATH],
    securityContext: { ...restrictedSecurityContext, runAsUser: COORDINATOR_UID, runAsGroup: COORDINATOR_UID },
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
    volumeMounts: [{ name: 'launcher', mountPath: LAUNCHER_DIR }],
  };
}

/** Pod-level fields from spec.agent (pull secrets, runtime class, placement). */
function podFields(swarm: Swarm): Record<string, unknown> {
  const agent = swarm.spec.agent;
  return {
    ...(agent.imagePullSecrets?.length ? { imagePullSecrets: agent.imagePullSecrets } : {}),
    ...(agent.runtimeClassName ? { runtimeClassName: agent.runtimeClassName } : {}),
    ...(agent.nodeSelector ? { nodeSelector: agent.nodeSelector } : {}),
    ...(agent.tolerations?.length ? { tolerations: agent.tolerations } : {}),
    ...(agent.affinity ? { affinity: agent.affinity } : {}),
  };
}
