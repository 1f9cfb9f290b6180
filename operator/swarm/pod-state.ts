// What the operator needs to know about a coordinator pod, parsed from
// whatever the API server, the scheduler and the kubelet wrote. The kinds keep
// V2's own failures (preflight, a crashed or killed-by-OOM coordinator) apart
// from what happens to a pod from outside (not scheduled, image not pulled,
// evicted, preempted, deleted): only the former may cost V2 a fallback.
import { z } from 'zod';
import { ANNOTATION_CREATED_AT, CONTAINER_NAME, EXIT_PREFLIGHT_FAILED, LABEL_ATTEMPT, LABEL_SHARD, LABEL_VERSION } from './coordinator-pod.js';
import type { CoordinationVersion } from '../coordination/types.js';

const terminated = z.looseObject({ exitCode: z.number().int(), reason: z.string().optional(), message: z.string().optional() });
const waiting = z.looseObject({ reason: z.string().optional(), message: z.string().optional() });
const running = z.looseObject({ startedAt: z.string().optional() });
const podCondition = z.looseObject({ type: z.string(), status: z.string(), reason: z.string().optional(), message: z.string().optional() });

const containerStatus = z.looseObject({
  name: z.string(),
  state: z.looseObject({ terminated: terminated.optional(), waiting: waiting.optional(), running: running.optional() }).optional(),
});

const podShape = z.looseObject({
  metadata: z.looseObject({
    name: z.string(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    creationTimestamp: z.string().optional(),
    deletionTimestamp: z.string().optional(),
  }),
  spec: z.looseObject({ nodeName: z.string().optional() }).optional(),
  status: z
    .looseObject({
      phase: z.string().optional(),
      reason: z.string().optional(),
      message: z.string().optional(),
      conditions: z.array(podCondition).optional(),
      containerStatuses: z.array(containerStatus).optional(),
      // The launcher's install and the agent container (spec.agent.image).
      initContainerStatuses: z.array(containerStatus).optional(),
    })
    .optional(),
});

/**
 * Container waiting reasons that mean the coordinator cannot start for a
 * cause outside it (the image, the pod's configuration, the runtime): the
 * swarm waits for them (bounded by its start deadline), V2 is not to blame.
 */
const BLOCKING_WAIT_REASONS = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'RegistryUnavailable',
  'ErrImageInspect',
  'SignatureValidationFailed',
  'CreateContainerConfigError',
  'CreateContainerError',
  'PreCreateHookError',
  'PreStartHookError',
  'RunContainerError',
]);

export type PodCondition =
  /** Not running yet, nothing known to be wrong (created, scheduled, container being created). */
  | { kind: 'starting'; reason: string; message: string }
  /** Not running yet, held by something outside the coordinator: the scheduler's or kubelet's own reason and message. */
  | { kind: 'blocked'; reason: string; message: string }
  /** The container runs and is not ready yet; `startedAt` starts the readiness clock. */
  | { kind: 'running'; startedAt: number }
  | { kind: 'ready' }
  | { kind: 'succeeded' }
  /** V2 preflight failed (exit code EXIT_PREFLIGHT_FAILED): the reason is its termination message. */
  | { kind: 'preflight-failed'; reason: string }
  /** The coordinator itself ended badly: exited non-zero, OOM-killed. */
  | { kind: 'crashed'; reason: string }
  /** Lost from outside: deleted, evicted, preempted, node lost, refused by the node. */
  | { kind: 'lost'; reason: string }
  /**
   * Being deleted and still running: its successor waits for it to be gone.
   * `until`: the deletionTimestamp, when the kubelet should have stopped it;
   * absent when nobody deletes it (its container exited 0, the phase follows).
   */
  | { kind: 'terminating'; reason: string; until?: number };

export interface PodState {
  name: string;
  version: CoordinationVersion;
  attempt: number;
  /** The shard it runs (its label; 0 when it has none). */
  shard: number;
  createdAt: number;
  /** The node the scheduler bound it to, once it has. */
  node?: string;
  /** Its phase is final (Succeeded, Failed): nothing of it runs any more. */
  ended: boolean;
  condition: PodCondition;
}

export function podState(raw: unknown): PodState | undefined {
  const r = podShape.safeParse(raw);
  if (!r.success) return undefined;
  const pod = r.data;
  const labels = pod.metadata.labels ?? {};
  const version = labels[LABEL_VERSION] === 'v1' ? 'v1' : 'v2';
  const attempt = Number(labels[LABEL_ATTEMPT] ?? '0');
  const shard = Number(labels[LABEL_SHARD] ?? '0');
  // Our own millisecond stamp; else the latest instant creationTimestamp (whole seconds) allows.
  const stamped = Date.parse(pod.metadata.annotations?.[ANNOTATION_CREATED_AT] ?? '');
  const createdAt = Number.isFinite(stamped) ? stamped : pod.metadata.creationTimestamp ? Date.parse(pod.metadata.creationTimestamp) + 999 : Date.now();
  const ended = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
  return {
    name: pod.metadata.name,
    version,
    attempt,
    shard: Number.isSafeInteger(shard) ? shard : 0,
    createdAt,
    ...(pod.spec?.nodeName ? { node: pod.spec.nodeName } : {}),
    ended,
    condition: classify(pod),
  };
}

type Pod = z.infer<typeof podShape>;

const jsonLogLine = z.looseObject({ msg: z.string() });

/**
 * The last line of a termination message; a JSON log line (the message falls
 * back to the container's log when the coordinator wrote none) gives its msg.
 */
function lastLine(text: string): string {
  const line = text.trim().split('\n').pop()?.trim() ?? '';
  if (!line.startsWith('{')) return line;
  try {
    const log = jsonLogLine.safeParse(JSON.parse(line));
    return log.success ? log.data.msg : line;
  } catch {
    return line;
  }
}

/** Why a failed pod failed from outside (the kubelet or a controller says so), else undefined. */
function externalCause(pod: Pod): string | undefined {
  const status = pod.status ?? {};
  const disruption = status.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (disruption) return [disruption.reason ?? 'DisruptionTarget', disruption.message].filter(Boolean).join(': ');
  // A pod-level reason is the kubelet's or a controller's verdict (Evicted,
  // NodeLost, Preempting, OutOfcpu, NodeAffinity, Shutdown, ...); a container
  // that exits on its own leaves it empty.
  if (status.reason) return [status.reason, status.message].filter(Boolean).join(': ');
  if (pod.metadata.deletionTimestamp) return 'coordinator pod deleted';
  return undefined;
}

function classify(pod: Pod): PodCondition {
  const status = pod.status ?? {};
  const container = status.containerStatuses?.find((c) => c.name === CONTAINER_NAME);
  const term = container?.state?.terminated;
  if (status.phase === 'Succeeded') return { kind: 'succeeded' };
  if (status.phase === 'Unknown') return { kind: 'lost', reason: `node ${pod.spec?.nodeName ?? ''} lost: pod phase Unknown`.replace('  ', ' ') };
  if (status.phase === 'Failed' || term) {
    if (term?.exitCode === EXIT_PREFLIGHT_FAILED)
      return { kind: 'preflight-failed', reason: lastLine(term.message ?? status.message ?? '') || 'V2 preflight failed' };
    const outside = externalCause(pod);
    if (outside) return { kind: 'lost', reason: outside };
    // Exited 0, the kubelet has not posted Succeeded yet: wait for the phase
    // (Complete implies the pod Succeeded).
    if (term?.exitCode === 0 && status.phase !== 'Failed') return { kind: 'terminating', reason: 'coordinator exited 0' };
    const why = term?.reason ?? 'Error';
    return {
      kind: 'crashed',
      reason: [why, term ? `exit code ${term.exitCode}` : '', lastLine(term?.message ?? status.message ?? '')].filter(Boolean).join(': '),
    };
  }
  if (pod.metadata.deletionTimestamp) {
    const until = Date.parse(pod.metadata.deletionTimestamp);
    return { kind: 'terminating', reason: 'coordinator pod deleted', ...(Number.isFinite(until) ? { until } : {}) };
  }
  if (container?.state?.running) {
    const ready = status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    if (ready) return { kind: 'ready' };
    // startedAt has whole seconds: its latest instant, so the clock never runs early.
    const started = Date.parse(container.state.running.startedAt ?? '');
    return { kind: 'running', startedAt: Number.isFinite(started) ? started + 999 : Date.now() };
  }
  const wait = container?.state?.waiting;
  if (wait?.reason && BLOCKING_WAIT_REASONS.has(wait.reason)) return { kind: 'blocked', reason: wait.reason, message: wait.message ?? wait.reason };
  // The agent image (an init container) blocked the same way: the coordinator waits in PodInitializing.
  for (const init of status.initContainerStatuses ?? []) {
    const w = init.state?.waiting;
    if (w?.reason && BLOCKING_WAIT_REASONS.has(w.reason))
      return { kind: 'blocked', reason: w.reason, message: `container ${init.name}: ${w.message ?? w.reason}` };
  }
  const scheduled = status.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False')
    return { kind: 'blocked', reason: scheduled.reason ?? 'Unschedulable', message: scheduled.message ?? 'the pod is not scheduled' };
  if (wait?.reason) return { kind: 'starting', reason: wait.reason, message: wait.message ?? `${wait.reason} on ${pod.spec?.nodeName ?? 'its node'}` };
  if (pod.spec?.nodeName) return { kind: 'starting', reason: 'Scheduled', message: `scheduled on ${pod.spec.nodeName}` };
  return { kind: 'starting', reason: 'PodCreated', message: 'waiting to be scheduled' };
}
