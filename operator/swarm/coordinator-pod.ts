// The coordinator pod of a Swarm: V2 with a memory-backed /dev/shm, V1 without;
// both with their agents in a container of their own (agent-container.ts),
// under the restricted Pod Security Standard and owned by the Swarm.
import { LABEL_MANAGED_BY, LABEL_SWARM, MANAGED_BY, POD_NAME_PREFIX_MAX } from '../api/common.js';
import { ownerReference } from './owner-reference.js';
import type { Swarm } from '../api/swarm.js';
import type { CoordinationVersion } from '../coordination/types.js';
import { RESULTS_MOUNT_PATH } from '../results/sink-factory.js';
import { agentSide, restrictedSecurityContext } from './agent-container.js';
import { RESULTS_VOLUME, resultsVolume } from './results-claim.js';
import { TASKS_MOUNT_PATH, TASKS_VOLUME, tasksVolume } from './swarm-tasks.js';
import { s3CredentialsVolume } from '../results/s3-credentials.js';
import { swarmShardCount } from './shards.js';

export const LABEL_VERSION = 'swarm.cfn.dev/version';
export const LABEL_ATTEMPT = 'swarm.cfn.dev/attempt';
/** The shard (0-based) a coordinator pod runs: every coordinator pod has it, "0" for a single-shard swarm. */
export const LABEL_SHARD = 'swarm.cfn.dev/shard';
/** Millisecond creation time: creationTimestamp has whole seconds, too coarse for a 1 s startup limit. */
export const ANNOTATION_CREATED_AT = 'swarm.cfn.dev/created-at';
/** Exit code of `cfn coordinate` when V2 preflight fails: the operator falls back on it. */
export const EXIT_PREFLIGHT_FAILED = 3;
export const SHM_PATH = '/dev/shm/cfn';
export const CONTAINER_NAME = 'coordinator';

export interface PodOptions {
  image: string;
  imagePullPolicy?: 'IfNotPresent' | 'Always' | 'Never';
  /** Resume: indexes that completed (status.completedAgents), for the record: the pod reads its Swarm's status itself. */
  completedAgents?: string;
  /** Resume: indexes that failed finally (status.failedIndexes), likewise. */
  failedIndexes?: string;
  attempt: number;
  /** The shard the pod runs (default 0). */
  shard?: number;
  /** When the operator creates the pod (default: now). */
  now?: Date;
  /** The pod's identity (default: the Swarm's own ServiceAccount, per-swarm identity). */
  serviceAccountName?: string;
}

/** Per-swarm ServiceAccount name (the coordinator's identity, see coordinator-rbac.ts). */
export const coordinatorServiceAccount = (swarm: Swarm): string => `${swarm.metadata.name.slice(0, POD_NAME_PREFIX_MAX)}-coordinator`;

/**
 * `<swarm>-<version>-<attempt>` for a single-shard swarm, `<swarm>-<version>-<attempt>-s<shard>`
 * when the swarm has more than one shard: read from the end, a name belongs to
 * one Swarm only (a Swarm named `<swarm>-s1` has pods `<swarm>-s1-v2-1`).
 */
export const coordinatorPodName = (swarm: Swarm, version: CoordinationVersion, attempt: number, shard = 0): string =>
  `${swarm.metadata.name.slice(0, POD_NAME_PREFIX_MAX)}-${version}-${attempt}${swarmShardCount(swarm) > 1 ? `-s${shard}` : ''}`;

/**
 * How the swarm's coordinator pods spread: spec.agent.topologySpreadConstraints
 * as given (an empty list: none), else one pod per node as far as it goes
 * (maxSkew 1 over hostnames, ScheduleAnyway: a swarm never waits for spreading).
 */
export function spreadConstraints(swarm: Swarm): Array<Record<string, unknown>> {
  const given = swarm.spec.agent.topologySpreadConstraints;
  if (given) return given;
  return [
    {
      maxSkew: 1,
      topologyKey: 'kubernetes.io/hostname',
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: { [LABEL_SWARM]: swarm.metadata.name } },
    },
  ];
}

/** The swarm's directory name on the tmpfs: its UID (a valid file name, unique). */
export const swarmRunId = (swarm: Swarm): string => swarm.metadata.uid ?? swarm.metadata.name;

export function coordinatorPod(swarm: Swarm, version: CoordinationVersion, opts: PodOptions) {
  const shard = opts.shard ?? 0;
  const name = coordinatorPodName(swarm, version, opts.attempt, shard);
  const runId = swarmRunId(swarm);
  const spec = swarm.spec;
  const volumes: object[] = [{ name: 'tmp', emptyDir: {} }, resultsVolume(swarm, shard)];
  const mounts: object[] = [
    { name: 'tmp', mountPath: '/tmp' },
    { name: RESULTS_VOLUME, mountPath: RESULTS_MOUNT_PATH },
  ];
  const tasks = tasksVolume(spec);
  if (tasks) {
    volumes.push(tasks);
    mounts.push({ name: TASKS_VOLUME, mountPath: TASKS_MOUNT_PATH, readOnly: true });
  }
  if (spec.results.s3) {
    // A volume, never env: an environment is inherited by every agent process.
    const creds = s3CredentialsVolume(spec.results.s3.credentialsSecretRef);
    volumes.push(creds.volume);
    mounts.push(creds.mount);
  }
  // The agents run in their own container (agent-container.ts), for V2 and V1 alike.
  const agents = agentSide(swarm, opts.image, version === 'v2' ? spec.v2.shmSizeLimit : undefined);
  if (version === 'v2') {
    volumes.push({ name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: String(spec.v2.shmSizeLimit) } });
    mounts.push({ name: 'dshm', mountPath: '/dev/shm' });
  } else {
    volumes.push({ name: 'data', emptyDir: {} });
    mounts.push({ name: 'data', mountPath: '/data' });
  }
  const env = [
    { name: 'SWARM_NAME', value: swarm.metadata.name },
    { name: 'SWARM_NAMESPACE', value: swarm.metadata.namespace ?? 'default' },
    { name: 'SWARM_UID', value: runId },
    { name: 'COORDINATION_VERSION', value: version },
    { name: 'CFN_SHARD', value: String(shard) },
    { name: 'CFN_SHM_PATH', value: SHM_PATH },
    { name: 'CFN_RESULTS_DIR', value: RESULTS_MOUNT_PATH },
    { name: 'CFN_MEMORY_DB', value: '/data/memory.sqlite' },
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ...(opts.completedAgents ? [{ name: 'CFN_COMPLETED_AGENTS', value: opts.completedAgents }] : []),
    ...(opts.failedIndexes ? [{ name: 'CFN_FAILED_INDEXES', value: opts.failedIndexes }] : []),
    // The agents' own environment goes to their container.
    ...agents.coordinatorEnv,
  ];
  volumes.push(...agents.volumes);
  mounts.push(...agents.coordinatorMounts);
  const spread = spreadConstraints(swarm);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: swarm.metadata.namespace,
      labels: {
        [LABEL_SWARM]: swarm.metadata.name,
        [LABEL_VERSION]: version,
        [LABEL_ATTEMPT]: String(opts.attempt),
        [LABEL_SHARD]: String(shard),
        [LABEL_MANAGED_BY]: MANAGED_BY,
        'app.kubernetes.io/name': 'swarm-coordinator',
      },
      annotations: { [ANNOTATION_CREATED_AT]: (opts.now ?? new Date()).toISOString() },
      ownerReferences: [ownerReference(swarm)],
    },
    spec: {
      restartPolicy: 'Never',
      serviceAccountName: opts.serviceAccountName ?? coordinatorServiceAccount(swarm),
      // No token in the pod but the coordinator container's own projected one.
      automountServiceAccountToken: false,
      ...agents.podFields,
      ...(spread.length ? { topologySpreadConstraints: spread } : {}),
      terminationGracePeriodSeconds: 30,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        fsGroup: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      initContainers: agents.initContainers,
      containers: [
        {
          name: CONTAINER_NAME,
          image: opts.image,
          imagePullPolicy: opts.imagePullPolicy ?? 'IfNotPresent',
          args: ['coordinate', '--swarm', swarm.metadata.name, '--namespace', swarm.metadata.namespace ?? 'default', '--version', version],
          env,
          securityContext: restrictedSecurityContext,
          ...(version === 'v2'
            ? {
                readinessProbe: {
                  exec: { command: ['test', '-s', `${SHM_PATH}/${runId}/health.json`] },
                  periodSeconds: 1,
                  failureThreshold: 1,
                },
              }
            : {}),
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'FallbackToLogsOnError',
          volumeMounts: mounts,
        },
      ],
      volumes,
    },
  };
}
