// The Swarm resource: the single source of truth for its CRD (crds/), its
// TypeScript types and the operator's parsing of what the API server returns.
import { z } from 'zod';
import { conditions, envVar, GROUP_VERSION, localObjectReference, objectMeta, quantity, resourceRequirements } from './common.js';

export const MAX_AGENTS = 10000;
export const FLAT_MAX_AGENTS = 300;
/** Most shards (coordinator pods) of one swarm: status.shards stays bounded. */
export const MAX_SHARDS = 100;
/** Bound on status.shards[].failedAgents (status.failedAgents keeps the first 50 over all shards). */
export const SHARD_FAILED_AGENTS_MAX = 10;
/** Bound on the total characters of an inline spec.tasks list (the object stays well below etcd's 1.5 MiB limit; larger lists go in a ConfigMap). */
export const TASKS_INLINE_MAX_CHARS = 262144;
/** Bound on one task's text. */
export const TASK_MAX_CHARS = 65536;

const rule = (r: string, message: string, fieldPath?: string) => (fieldPath ? { rule: r, message, fieldPath } : { rule: r, message });

export const coordinationSpec = z
  .object({
    version: z
      .enum(['v1', 'v2', 'auto'])
      .default('auto')
      .describe('Coordinator to run: v2 (bash on tmpfs), v1 (TypeScript), or auto (the RolloutPolicy or operator default decides).'),
    fallbackEnabled: z
      .boolean()
      .default(true)
      .describe(
        'Move the swarm to V1 when V2 itself fails: preflight fails, the coordinator crashes or is OOM-killed, or it is not ready within fallbackTimeoutSeconds of its container starting.',
      ),
    fallbackTimeoutSeconds: z
      .number()
      .int()
      .min(1)
      .max(600)
      .default(30)
      .describe(
        'How long a V2 coordinator may take to become ready (or publish progress) once its container runs, before the swarm falls back to V1. Time spent unscheduled, pulling the image or creating the container does not count (see startDeadlineSeconds). The default leaves room for a busy node, where starting the coordinator alone can take seconds.',
      ),
    startDeadlineSeconds: z
      .number()
      .int()
      .min(1)
      .max(86400)
      .default(600)
      .describe(
        'How long a coordinator pod may take to get its container running (scheduling, image pull, volumes, quota) before the swarm fails with the reason it waited for. Waiting is never a fallback.',
      ),
  })
  .describe('How the swarm is coordinated.');

/** The agents' user: never root, never the coordinator's (65532), so agents cannot touch its files. */
export const AGENT_UID_DEFAULT = 65533;
export const COORDINATOR_UID = 65532;

/** isolation container: the most agent containers (slots) one coordinator pod has; more agents at once take shards. */
export const ISOLATED_SLOTS_MAX = 64;

export const agentSecurityContext = z
  .object({
    runAsUser: z
      .number()
      .int()
      .min(1)
      .max(2147483647)
      .optional()
      .describe(
        `User the agents run as (default ${AGENT_UID_DEFAULT}); never 0 and never the coordinator's ${COORDINATOR_UID}. The rest of the agent container's security context is the restricted Pod Security Standard, fixed.`,
      ),
  })
  .meta({
    'x-kubernetes-validations': [
      rule(`!has(self.runAsUser) || self.runAsUser != ${COORDINATOR_UID}`, `runAsUser must not be the coordinator's user ${COORDINATOR_UID}`, '.runAsUser'),
    ],
  })
  .describe('Security settings of the agent container, within the restricted Pod Security Standard.');

export const agentSpec = z
  .object({
    image: z
      .string()
      .min(1)
      .max(512)
      .optional()
      .describe(
        'Image the agents run in (the agent container of the coordinator pod); defaults to the operator image. It needs nothing of the operator: an init container copies a static launcher into it.',
      ),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional().describe('Pull policy of the agent image (default IfNotPresent).'),
    imagePullSecrets: z
      .array(localObjectReference.describe("A Secret of type kubernetes.io/dockerconfigjson in the Swarm's namespace."))
      .max(16)
      .optional()
      .describe("Secrets to pull the agent image with (the coordinator pod's imagePullSecrets)."),
    securityContext: agentSecurityContext.optional(),
    runtimeClassName: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/)
      .optional()
      .describe('RuntimeClass of the coordinator pod (e.g. gVisor or Kata, for a stronger sandbox around the agents).'),
    nodeSelector: z.record(z.string(), z.string()).optional().describe('Node labels the coordinator pod (and so the agents) must run on.'),
    tolerations: z
      .array(
        z
          .record(z.string(), z.unknown())
          .meta({ 'x-kubernetes-preserve-unknown-fields': true })
          .describe('A Toleration (key, operator, value, effect, tolerationSeconds).'),
      )
      .max(32)
      .optional()
      .describe('Tolerations of the coordinator pod, as in a pod spec.'),
    affinity: z
      .record(z.string(), z.unknown())
      .optional()
      .meta({ 'x-kubernetes-preserve-unknown-fields': true })
      .describe('Affinity of the coordinator pod, as in a pod spec.'),
    topologySpreadConstraints: z
      .array(z.record(z.string(), z.unknown()).meta({ 'x-kubernetes-preserve-unknown-fields': true }).describe('A TopologySpreadConstraint, as in a pod spec.'))
      .max(8)
      .optional()
      .describe(
        "How the swarm's shard pods spread over the cluster, as in a pod spec. Default: maxSkew 1 over kubernetes.io/hostname, whenUnsatisfiable ScheduleAnyway, selecting the swarm's own pods; an empty list turns spreading off.",
      ),
    command: z.array(z.string().max(4096)).min(1).max(64).describe('The agent command (argv, never run through a shell).'),
    args: z.array(z.string().max(4096)).max(256).optional().describe('Arguments appended to command.'),
    env: z.array(envVar).max(128).optional().describe('Environment of each agent process (values, or valueFrom a Secret or ConfigMap).'),
    resources: resourceRequirements
      .optional()
      .describe(
        "Compute resources of the agent container: with isolation shared, all agents of a pod share them; with isolation container, each slot container gets them (one agent's resources, times concurrency per pod).",
      ),
    isolation: z
      .enum(['shared', 'container'])
      .optional()
      .describe(
        `How the agents of a coordinator pod are kept from each other (docs/security.md). shared (default): one agent container runs every agent as one user, fastest, for agents that trust each other (a running agent can see its running siblings' tasks). container: each of the concurrency slots is an agent container of its own (agent-0 .. agent-<concurrency-1>), with its own user (securityContext.runAsUser + k), /tmp, /workspace, channel and PID namespace; it runs one agent at a time and nothing of one agent (processes, files) is left for the next. At most ${ISOLATED_SLOTS_MAX} slots per pod: more agents at once take shards.`,
      ),
    timeoutSeconds: z.number().int().min(1).max(86400).default(300).describe('Per-agent attempt timeout.'),
    retries: z.number().int().min(0).max(10).default(2).describe('Retries after a failed attempt, with exponential backoff.'),
    noRetryExitCodes: z
      .array(z.number().int().min(1).max(255))
      .max(32)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'set' })
      .describe(
        'Exit codes (1-255) that mean "never retry": an attempt ending with one is the agent\'s final, failed answer, whatever retries remain (like a Job podFailurePolicy FailIndex).',
      ),
    concurrency: z.number().int().min(1).max(1000).default(32).describe('Agents running at once in the coordinator.'),
    maxOutputBytes: z.number().int().min(0).max(16777216).default(65536).describe('Bound on each agent output kept in its response.'),
  })
  .meta({
    'x-kubernetes-validations': [
      rule(
        `!has(self.isolation) || self.isolation != 'container' || !has(self.concurrency) || self.concurrency <= ${ISOLATED_SLOTS_MAX}`,
        `concurrency must be at most ${ISOLATED_SLOTS_MAX} with isolation container (one agent container per slot); use spec.shards for more agents at once`,
        '.concurrency',
      ),
      rule(
        `!has(self.isolation) || self.isolation != 'container' || (has(self.securityContext) && has(self.securityContext.runAsUser) ? self.securityContext.runAsUser : ${AGENT_UID_DEFAULT}) > ${COORDINATOR_UID} || (has(self.securityContext) && has(self.securityContext.runAsUser) ? self.securityContext.runAsUser : ${AGENT_UID_DEFAULT}) + (has(self.concurrency) ? self.concurrency : 32) <= ${COORDINATOR_UID}`,
        `with isolation container the slots run as securityContext.runAsUser + 0 .. concurrency-1, which must not include the coordinator's user ${COORDINATOR_UID}`,
        '.securityContext',
      ),
      rule(
        `!has(self.isolation) || self.isolation != 'container' || !has(self.securityContext) || !has(self.securityContext.runAsUser) || self.securityContext.runAsUser + (has(self.concurrency) ? self.concurrency : 32) <= 2147483648`,
        'with isolation container the slots run as securityContext.runAsUser + 0 .. concurrency-1, which must stay at most 2147483647',
        '.securityContext',
      ),
    ],
  })
  .describe('The agent process run once per agent (see the agent contract).');

export const v2Spec = z
  .object({
    shmSizeLimit: quantity.default('256Mi').describe('Size of the memory-backed /dev/shm of the V2 coordinator pod.'),
  })
  .describe('Settings of the V2 (bash, tmpfs) coordinator.');

export const s3Results = z
  .object({
    endpoint: z
      .string()
      .min(1)
      .max(2048)
      .regex(/^https?:\/\/[^\s/]+(\/.*)?$/, 'an http:// or https:// URL')
      .describe('The S3-compatible endpoint, e.g. https://s3.us-east-1.amazonaws.com or http://minio.storage:9000.'),
    bucket: z
      .string()
      .min(3)
      .max(63)
      .regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, 'an S3 bucket name')
      .describe('The bucket (it must exist).'),
    prefix: z
      .string()
      .max(512)
      .regex(/^([A-Za-z0-9!_.*'()-]+\/)*$/, 'empty, or path segments each ending in "/"')
      .optional()
      .describe('Key prefix before <namespace>/<name>/<uid>/<index>.json, e.g. "swarms/".'),
    region: z.string().min(1).max(64).default('us-east-1').describe('The region signed into requests.'),
    forcePathStyle: z.boolean().default(true).describe('Address the bucket in the path (most S3-compatible servers) rather than as a host name.'),
    credentialsSecretRef: z
      .object({
        name: z.string().min(1).max(253).describe("The Secret, in the Swarm's namespace."),
        accessKeyIdKey: z.string().min(1).max(253).default('AWS_ACCESS_KEY_ID').describe('The key holding the access key id.'),
        secretAccessKeyKey: z.string().min(1).max(253).default('AWS_SECRET_ACCESS_KEY').describe('The key holding the secret access key.'),
      })
      .describe('The Secret with the credentials; only the coordinator container reads it.'),
  })
  .describe('An S3-compatible object store for the results.');

export const resultsSpec = z
  .object({
    type: z
      .enum(['persistentVolumeClaim', 's3', 'emptyDir'])
      .default('persistentVolumeClaim')
      .describe(
        "Where each agent's result is stored as it arrives: a PersistentVolumeClaim (default), an S3-compatible object store, or emptyDir (gone with the pod; for throwaway runs).",
      ),
    claimName: z
      .string()
      .min(1)
      .max(253)
      .optional()
      .describe(
        'An existing PersistentVolumeClaim to use; the operator neither creates nor deletes it. Without it the operator creates <swarm>-results, owned by the Swarm.',
      ),
    storageClassName: z
      .string()
      .min(1)
      .max(253)
      .optional()
      .describe("StorageClass of the claim the operator creates; default: the cluster's default StorageClass."),
    size: quantity.optional().describe('Storage request of the claim the operator creates (default 1Gi).'),
    retain: z.boolean().optional().describe('Keep the claim the operator created when the Swarm is deleted (default false: it is deleted with the Swarm).'),
    s3: s3Results.optional(),
  })
  .meta({
    'x-kubernetes-validations': [
      rule("self.type == 's3' ? has(self.s3) : !has(self.s3)", 's3 is required when type is s3, and only then', '.s3'),
      rule(
        "self.type == 'persistentVolumeClaim' || (!has(self.claimName) && !has(self.storageClassName) && !has(self.size) && !has(self.retain))",
        'claimName, storageClassName, size and retain apply only when type is persistentVolumeClaim',
        '.type',
      ),
      rule(
        '!has(self.claimName) || (!has(self.storageClassName) && !has(self.size) && !has(self.retain))',
        'storageClassName, size and retain apply to the claim the operator creates, not to an existing claimName',
        '.claimName',
      ),
    ],
  })
  .describe("Where every agent's result goes, one record per agent index, stored as it arrives (see docs/results.md).");

export const successPolicy = z
  .object({
    minDeliveryRate: z
      .number()
      .min(0)
      .max(100)
      .default(100)
      .describe(
        'Lowest delivery rate (completed agents / total, percent) for the swarm to succeed (phase Succeeded, condition Complete); below it the swarm ends Failed (reason DeliveryBelowSuccessPolicy).',
      ),
  })
  .describe("When a finished swarm counts as a success (like an Indexed Job's successPolicy).");

export const tasksFrom = z
  .object({
    configMapKeyRef: z
      .object({
        name: z.string().min(1).max(253).describe("The ConfigMap, in the Swarm's namespace."),
        key: z.string().min(1).max(253).describe('The key holding the task list.'),
      })
      .describe('The ConfigMap key holding the tasks.'),
    format: z
      .enum(['auto', 'lines', 'jsonl'])
      .default('auto')
      .describe(
        'lines: one task per line; jsonl: one {"task": "...", "env": [{"name","value"}]} object per line; auto: jsonl when the first non-blank line starts with "{", else lines. Blank lines are not tasks.',
      ),
  })
  .describe(
    'Per-agent tasks from a ConfigMap key: agent i gets the i-th task. Give agents too: the task count must equal it (checked before the coordinator starts).',
  );

export const swarmSpec = z
  .object({
    objective: z
      .string()
      .min(1)
      .max(65536)
      .describe('What the swarm works on: every agent gets it in CFN_OBJECTIVE, and as its task when the swarm has no tasks (data, never evaluated).'),
    agents: z.number().int().min(1).max(MAX_AGENTS).optional().describe('Number of agents; defaults to the number of spec.tasks (required otherwise).'),
    tasks: z
      .array(z.string().max(TASK_MAX_CHARS))
      .min(1)
      .max(MAX_AGENTS)
      .optional()
      .describe(
        `Per-agent tasks, inline: agent i gets tasks[i] on stdin and in CFN_TASK. At most ${TASKS_INLINE_MAX_CHARS} characters in all; use tasksFrom for more.`,
      ),
    tasksFrom: tasksFrom.optional(),
    topology: z
      .enum(['flat', 'hybrid', 'auto'])
      .default('auto')
      .describe(
        `flat: one shard (up to ${FLAT_MAX_AGENTS} agents); hybrid: two or more shards (coordinator pods) under the operator; auto: as spec.shards decides.`,
      ),
    shards: z
      .union([z.number().int().min(1).max(MAX_SHARDS), z.literal('auto')])
      .default('auto')
      .meta({
        'x-kubernetes-int-or-string': true,
        'x-kubernetes-validations': [
          rule(`type(self) == int ? (self >= 1 && self <= ${MAX_SHARDS}) : self == 'auto'`, `shards must be a number from 1 to ${MAX_SHARDS}, or "auto"`),
        ],
      })
      .describe(
        `How many coordinator pods (shards) split the agents into contiguous index ranges, each a full coordinator with its own agent container, spread over the nodes; or auto: one shard per ${FLAT_MAX_AGENTS} agents, and, when spec.agent.resources requests cpu (heavy agents), enough shards to run every agent at once (agents / agent.concurrency); at most ${MAX_SHARDS}.`,
      ),
    suspend: z
      .boolean()
      .default(false)
      .describe(
        'While true the operator creates nothing for the swarm (no pod, no claim) and stops pods it runs (their agents run again on resume): a queueing system such as Kueue admits the swarm by setting it to false.',
      ),
    timeoutSeconds: z.number().int().min(1).max(604800).default(3600).describe('Deadline for the whole objective.'),
    coordination: coordinationSpec.prefault({}),
    agent: agentSpec,
    v2: v2Spec.prefault({}),
    results: resultsSpec.prefault({ type: 'persistentVolumeClaim' }),
    successPolicy: successPolicy.prefault({}),
    ttlSecondsAfterFinished: z.number().int().min(0).optional().describe('Delete the Swarm this long after it finished.'),
    rolloutPolicyRef: localObjectReference.optional().describe('RolloutPolicy deciding the version when coordination.version is auto.'),
  })
  .meta({
    'x-kubernetes-validations': [
      rule(
        `self.topology != 'flat' || (has(self.agents) ? self.agents <= ${FLAT_MAX_AGENTS} : (!has(self.tasks) || size(self.tasks) <= ${FLAT_MAX_AGENTS}))`,
        `topology flat supports at most ${FLAT_MAX_AGENTS} agents; use hybrid or auto`,
        '.topology',
      ),
      rule("self.topology != 'flat' || self.shards == 1 || self.shards == 'auto'", 'topology flat is one shard: shards must be 1 or auto', '.shards'),
      rule("self.topology != 'hybrid' || self.shards == 'auto' || self.shards >= 2", 'topology hybrid is two or more shards', '.shards'),
      rule('!has(self.tasks) || !has(self.tasksFrom)', 'tasks and tasksFrom are mutually exclusive', '.tasksFrom'),
      rule('has(self.agents) || has(self.tasks)', 'agents is required unless tasks is given (it defaults to the number of tasks)', '.agents'),
      rule('!has(self.agents) || !has(self.tasks) || self.agents == size(self.tasks)', 'agents must equal the number of tasks (one task per agent)', '.agents'),
      rule(
        `!has(self.tasks) || self.tasks.map(t, size(t)).sum() <= ${TASKS_INLINE_MAX_CHARS}`,
        `tasks must hold at most ${TASKS_INLINE_MAX_CHARS} characters in all; put a larger list in a ConfigMap (tasksFrom)`,
        '.tasks',
      ),
      rule('self.objective == oldSelf.objective', 'objective is immutable', '.objective'),
      rule('has(self.agents) == has(oldSelf.agents) && (!has(self.agents) || self.agents == oldSelf.agents)', 'agents is immutable', '.agents'),
      rule('has(self.tasks) == has(oldSelf.tasks) && (!has(self.tasks) || self.tasks == oldSelf.tasks)', 'tasks is immutable', '.tasks'),
      rule(
        'has(self.tasksFrom) == has(oldSelf.tasksFrom) && (!has(self.tasksFrom) || self.tasksFrom == oldSelf.tasksFrom)',
        'tasksFrom is immutable',
        '.tasksFrom',
      ),
      rule('self.topology == oldSelf.topology', 'topology is immutable', '.topology'),
      rule('self.shards == oldSelf.shards', 'shards is immutable', '.shards'),
      rule('self.coordination.version == oldSelf.coordination.version', 'coordination.version is immutable', '.coordination.version'),
      rule('self.agent == oldSelf.agent', 'agent is immutable', '.agent'),
      rule('self.results == oldSelf.results', 'results is immutable', '.results'),
    ],
  })
  .describe(
    'Desired swarm: its objective, how many agents run it and how, and how it is coordinated. objective, agents, topology, agent and coordination.version are immutable.',
  );

export const swarmPhase = z.enum(['Pending', 'Running', 'FallingBack', 'Succeeded', 'Failed']);

export const fallbackRecord = z.object({
  from: z.enum(['v1', 'v2']),
  to: z.enum(['v1', 'v2']),
  reason: z.string().max(4096),
  time: z.string(),
});

export const coordinatorResult = z.object({
  status: z.enum(['completed', 'failed', 'timeout', 'stopped']),
  message: z.string().max(4096).optional(),
});

export const resultsStatus = z
  .object({
    type: z.enum(['persistentVolumeClaim', 's3', 'emptyDir']),
    location: z
      .string()
      .max(4096)
      .describe(
        'Where the results are: "pvc://<claim>/<namespace>/<name>/<uid>/", "s3://<bucket>/<prefix><namespace>/<name>/<uid>/" or "emptyDir://<pod>/..." (gone with the pod).',
      ),
    stored: z.number().int().min(0).describe('Agent results stored durably (one per agent index).'),
    bytes: z.number().int().min(0).describe('Bytes of the stored records.'),
    pending: z.number().int().min(0).optional().describe('Results received but not yet stored (the sink is slow or failing).'),
    lastError: z
      .string()
      .max(4096)
      .optional()
      .describe('The last error storing a result (a full volume, an unreachable store); cleared when a store succeeds again.'),
  })
  .describe("Where the agents' results are stored, how many and how big (written by the coordinator); read them with `cfn results`.");

/**
 * One shard (coordinator pod) of a swarm. Two writers, as for the whole
 * status: the operator (index, indexes, pod, node, version, phase, attempts,
 * attemptTime, reason, message, fallback) and the shard's coordinator
 * (progress: agents .. results), each with its own field manager on its own
 * list entry (a list map keyed by index).
 */
export const shardStatus = z.object({
  index: z
    .number()
    .int()
    .min(0)
    .max(MAX_SHARDS - 1)
    .describe('The shard number, 0-based.'),
  indexes: z.string().max(64).describe('The agent indexes of the shard, compressed: "0-332".'),
  pod: z.string().max(253).optional().describe("The shard's current coordinator pod."),
  node: z.string().max(253).optional().describe('The node that pod runs on.'),
  version: z.enum(['v1', 'v2']).optional().describe('The version the shard runs now (v1 after its own fallback).'),
  phase: swarmPhase.optional(),
  attempts: z.number().int().min(0).optional().describe('Coordinator pods created for the shard so far.'),
  attemptTime: z.string().optional().describe("When the shard's current attempt was decided (its start deadline runs from here)."),
  reason: z
    .string()
    .max(256)
    .optional()
    .describe('Why the shard is in its phase: a pod waiting (Unschedulable, ...), moved (NodeLost, ...), fallen back, failed.'),
  message: z.string().max(4096).optional().describe("The same in words: the scheduler's, kubelet's or coordinator's own message."),
  fallback: fallbackRecord.optional().describe("The shard's fallback from V2 to V1, when V2 itself failed."),
  agents: z.object({ total: z.number().int(), completed: z.number().int(), failed: z.number().int() }).optional(),
  completedAgents: z.string().max(65536).optional().describe('Completed agent indexes of the shard, compressed.'),
  failedIndexes: z.string().max(65536).optional().describe('Finally failed agent indexes of the shard, compressed.'),
  failedAgents: z
    .array(z.object({ index: z.number().int(), reason: z.string().max(1024) }))
    .max(SHARD_FAILED_AGENTS_MAX)
    .optional(),
  coordinationTimeMs: z.number().int().min(0).optional(),
  interruptedAgents: z.string().max(65536).optional(),
  rerunAgents: z.number().int().min(0).optional(),
  result: coordinatorResult.optional(),
  progressPod: z.string().max(253).optional(),
  results: resultsStatus.optional(),
});
export type ShardStatus = z.output<typeof shardStatus>;

/**
 * Status has two writers, each with its own server-side-apply field manager:
 * the operator (decisions: phase, version, fallback, conditions) and the
 * coordinator pod (progress: agents, deliveryRate, completedAgents, failedIndexes, result,
 * progressPod, interruptedAgents, rerunAgents).
 */
export const swarmStatus = z
  .object({
    phase: swarmPhase.optional(),
    observedGeneration: z.number().int().optional(),
    version: z.enum(['v1', 'v2']).optional().describe('The version chosen for this swarm; set once, never flipped.'),
    versionReason: z.string().max(1024).optional(),
    topology: z.enum(['flat', 'hybrid']).optional(),
    agents: z.object({ total: z.number().int(), completed: z.number().int(), failed: z.number().int() }).optional(),
    deliveryRate: z.number().min(0).max(100).optional().describe('Completed agents / total, in percent (a failed agent is not delivered).'),
    coordinationTimeMs: z.number().int().min(0).optional(),
    completedAgents: z
      .string()
      .max(65536)
      .optional()
      .describe('Indexes of agents that completed, compressed: "0-9,12". A replacement coordinator does not run them again.'),
    failedIndexes: z
      .string()
      .max(65536)
      .optional()
      .describe(
        'Indexes of agents that failed finally (retries spent or a no-retry exit code), compressed: "3,17-18". A replacement coordinator does not run them again.',
      ),
    failedAgents: z
      .array(z.object({ index: z.number().int(), reason: z.string().max(1024) }))
      .max(50)
      .optional()
      .describe('The first failed agents with reasons (bounded).'),
    result: coordinatorResult.optional().describe('How the coordinator ended the run (written by the coordinator).'),
    progressPod: z.string().max(253).optional().describe('The coordinator pod that last published progress (written by the coordinator): proof that it runs.'),
    interruptedAgents: z
      .string()
      .max(65536)
      .optional()
      .describe(
        'Indexes of agents that were running when their coordinator was stopped, compressed: "3,7". They delivered nothing and run again under the next coordinator (written by the coordinator).',
      ),
    rerunAgents: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('How many agents run again because their coordinator was stopped mid-run (the size of interruptedAgents).'),
    results: resultsStatus.optional(),
    shardCount: z
      .number()
      .int()
      .min(1)
      .max(MAX_SHARDS)
      .optional()
      .describe(
        'How many shards (coordinator pods) the swarm runs as: decided from spec.shards once, with the version, and never changed (written by the operator).',
      ),
    shards: z
      .array(shardStatus)
      .max(MAX_SHARDS)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['index'] })
      .describe('One entry per shard (coordinator pod): its index range, pod, node, version, phase and progress. The swarm-wide figures above add them up.'),
    rollout: z
      .object({
        policy: z.string(),
        bucket: z.number().int().min(0).max(99),
        percentage: z.number().int().min(0).max(100),
        time: z.string(),
        generation: z.number().int().optional().describe('The policy generation that routed the swarm.'),
        step: z.number().int().min(-1).optional().describe('The policy step (status.currentStep) that routed the swarm.'),
      })
      .optional()
      .describe('The RolloutPolicy routing that decided the version, when one did.'),
    activeVersion: z.enum(['v1', 'v2']).optional().describe('The version of the coordinator running now: differs from version after a fallback.'),
    fallback: fallbackRecord.optional(),
    fallbackHistory: z.array(fallbackRecord).max(10).optional(),
    coordinatorPod: z
      .string()
      .optional()
      .describe('The coordinator pod of a single-shard swarm; unset when the swarm has several shards (status.shards[].pod names each).'),
    coordinatorAttempts: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Coordinator pods created so far (pod names end in the attempt); single-shard swarms only (status.shards[].attempts).'),
    coordinatorAttemptTime: z
      .string()
      .optional()
      .describe(
        'When the current coordinator attempt was decided: its start deadline (spec.coordination.startDeadlineSeconds) runs from here; single-shard swarms only (status.shards[].attemptTime).',
      ),
    startTime: z.string().optional(),
    completionTime: z.string().optional(),
    lastError: z.string().max(4096).optional(),
    conditions: conditions.optional(),
  })
  .meta({
    'x-kubernetes-validations': [
      rule('!has(oldSelf.version) || (has(self.version) && self.version == oldSelf.version)', 'status.version is decided once and never changes', '.version'),
      rule(
        '!has(oldSelf.shardCount) || (has(self.shardCount) && self.shardCount == oldSelf.shardCount)',
        'status.shardCount is decided once and never changes',
        '.shardCount',
      ),
    ],
  });

export const swarm = z.object({
  apiVersion: z.literal(GROUP_VERSION),
  kind: z.literal('Swarm'),
  metadata: objectMeta,
  spec: swarmSpec,
  status: swarmStatus.optional(),
});

export type SwarmSpec = z.output<typeof swarmSpec>;

/** The swarm's number of agents: spec.agents, else the number of inline tasks. */
export const swarmAgents = (spec: Pick<SwarmSpec, 'agents' | 'tasks'>): number => spec.agents ?? spec.tasks?.length ?? 0;
/** The Swarm resource's status (a coordinator's report of one run is coordination/types.ts RunStatus). */
export type SwarmResourceStatus = z.output<typeof swarmStatus>;
export type Swarm = z.output<typeof swarm>;
