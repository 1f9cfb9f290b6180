// What the operator needs to know about a coordinator pod, parsed from
// whatever the API server (or kubelet) wrote.
import { z } from 'zod';
import { ANNOTATION_CREATED_AT, CONTAINER_NAME, EXIT_PREFLIGHT_FAILED, LABEL_ATTEMPT, LABEL_VERSION } from './coordinator-pod.js';
import type { CoordinationVersion } from '../coordination/types.js';

const terminated = z.looseObject({ exitCode: z.number().int(), reason: z.string().optional(), message: z.string().optional() });

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
      conditions: z.array(z.looseObject({ type: z.string(), status: z.string() })).optional(),
      containerStatuses: z
        .array(z.looseObject({ name: z.string(), state: z.looseObject({ terminated: terminated.optional() }).optional(), lastState: z.looseObject({ terminated: terminated.optional() }).optional() }))
        .optional(),
    })
    .optional(),
});

export type PodCondition =
  | { kind: 'starting' }
  | { kind: 'ready' }
  | { kind: 'succeeded' }
  | { kind: 'preflight-failed'; reason: string }
  | { kind: 'lost'; reason: string };

export interface PodState {
  name: string;
  version: CoordinationVersion;
  attempt: number;
  createdAt: number;
  /** The node the scheduler bound it to, once it has. */
  node?: string;
  condition: PodCondition;
}

export function podState(raw: unknown): PodState | undefined {
  const r = podShape.safeParse(raw);
  if (!r.success) return undefined;
  const pod = r.data;
  const labels = pod.metadata.labels ?? {};
  const version = labels[LABEL_VERSION] === 'v1' ? 'v1' : 'v2';
  const attempt = Number(labels[LABEL_ATTEMPT] ?? '0');
  // Our own millisecond stamp; else the latest instant creationTimestamp (whole seconds) allows.
  const stamped = Date.parse(pod.metadata.annotations?.[ANNOTATION_CREATED_AT] ?? '');
  const createdAt = Number.isFinite(stamped) ? stamped : pod.metadata.creationTimestamp ? Date.parse(pod.metadata.creationTimestamp) + 999 : Date.now();
  return { name: pod.metadata.name, version, attempt, createdAt, ...(pod.spec?.nodeName ? { node: pod.spec.nodeName } : {}), condition: classify(pod) };
}

function classify(pod: z.infer<typeof podShape>): PodCondition {
  const status = pod.status ?? {};
  const container = status.containerStatuses?.find((c) => c.name === CONTAINER_NAME);
  const term = container?.state?.terminated;
  if (pod.metadata.deletionTimestamp && status.phase !== 'Succeeded') return { kind: 'lost', reason: 'coordinator pod deleted' };
  switch (status.phase) {
    case 'Succeeded':
      return { kind: 'succeeded' };
    case 'Failed': {
      const message = (term?.message ?? status.message ?? '').trim();
      if (term?.exitCode === EXIT_PREFLIGHT_FAILED) return { kind: 'preflight-failed', reason: message || 'V2 preflight failed' };
      const why = status.reason ?? term?.reason ?? 'Error';
      const detail = term ? `exit code ${term.exitCode}` : '';
      return { kind: 'lost', reason: [why, detail, message.split('\n').pop()].filter(Boolean).join(': ') };
    }
    default: {
      const ready = status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      return ready ? { kind: 'ready' } : { kind: 'starting' };
    }
  }
}
