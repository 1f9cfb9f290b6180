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
  const agentUid = agent.securityContext?.runAsUser ?? AGENT_UID_DEFAULT;
  const volumes = [
    tokenVolume(),
    { name: 'launcher', emptyDir: {} },
    { name: 'launch', emptyDir: shmSizeLimit === undefined ? {} : { medium: 'Memory', sizeLimit: String(shmSizeLimit) } },
    { name: 'agent-tmp', emptyDir: {} },
    { name: 'agent-work', emptyDir: {} },
  ];
  const install = {
    name: LAUNCHER_INIT_CONTAINER,
    image,
    command: ['cp', LAUNCHER_IN_IMAGE, LAUNCHER_PATH],
    securityContext: { ...restrictedSecurityContext, runAsUser: COORDINATOR_UID, runAsGroup: COORDINATOR_UID },
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
    volumeMounts: [{ name: 'launcher', mountPath: LAUNCHER_DIR }],
  };
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
    initContainers: [install, agentContainer],
    coordinatorMounts: [
      { name: 'coordinator-token', mountPath: SERVICE_ACCOUNT_DIR, readOnly: true },
      { name: 'launch', mountPath: CHANNEL_DIR },
    ],
    coordinatorEnv: [{ name: 'CFN_LAUNCHER_DIR', value: CHANNEL_DIR }],
    podFields: {
      ...(agent.imagePullSecrets?.length ? { imagePullSecrets: agent.imagePullSecrets } : {}),
      ...(agent.runtimeClassName ? { runtimeClassName: agent.runtimeClassName } : {}),
      ...(agent.nodeSelector ? { nodeSelector: agent.nodeSelector } : {}),
      ...(agent.tolerations?.length ? { tolerations: agent.tolerations } : {}),
      ...(agent.affinity ? { affinity: agent.affinity } : {}),
    },
  };
}
