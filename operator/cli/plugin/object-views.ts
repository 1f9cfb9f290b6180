// What `kubectl swarm` shows: views of a Swarm (with its pods and events) and
// of a RolloutPolicy, built from what the API server returned (parsed with
// zod: the plugin reads objects it did not write) and formatted for a person
// or, as they are, for scripts (-o json|yaml).
import { z } from 'zod';
import { findCondition } from '../../api/conditions.js';
import { READY, RECONCILING, STALLED } from '../../api/kstatus-conditions.js';
import { ROLLOUT_ANNOTATIONS } from '../../api/rollout-policy.js';
import { LABEL_ATTEMPT, LABEL_SHARD, LABEL_VERSION } from '../../swarm/coordinator-pod.js';
import type { Condition } from '../../api/common.js';
import type { RolloutPolicy } from '../../api/rollout-policy.js';
import type { Swarm } from '../../api/swarm.js';
import { swarmAgents } from '../../api/swarm.js';

/** The kstatus reading of an object: what Flux and Argo CD make of it too. */
export interface Health {
  state: 'Terminating' | 'NotObserved' | 'Reconciling' | 'Stalled' | 'Ready';
  reason: string;
  message: string;
}

export interface EventView {
  time: string;
  type: string;
  reason: string;
  message: string;
  count: number;
}

export interface PodView {
  name: string;
  /** The shard the pod runs (label swarm.cfn.dev/shard), a sharded swarm's pods only. */
  shard?: number;
  version: string;
  attempt: number;
  phase: string;
  ready: boolean;
  node: string;
  reason: string;
}

/** One shard of a sharded swarm (status.shards), as the shards table shows it. */
export interface ShardView {
  index: number;
  indexes: string;
  pod: string;
  node: string;
  version: string;
  phase: string;
  completed: number;
  failed: number;
  total: number;
  reason: string;
  message: string;
}

export interface SwarmView {
  kind: 'Swarm';
  name: string;
  namespace: string;
  generation: number;
  phase: string;
  health: Health;
  version?: { decided: string; reason: string; active: string };
  topology?: string;
  agents: { total: number; completed: number; failed: number; done: number };
  deliveryRate?: number;
  /** status.results: where the agents' results are, how many are stored. */
  results?: { location: string; stored: number; bytes: number; pending: number; lastError?: string };
  fallback?: { from: string; to: string; reason: string; time: string };
  fallbacks: number;
  /** status.shards of a sharded swarm (more than one entry): every shard, by index. */
  shards?: ShardView[];
  startTime?: string;
  completionTime?: string;
  pods: PodView[];
  events: EventView[];
}

export interface RolloutView {
  kind: 'RolloutPolicy';
  name: string;
  namespace: string;
  generation: number;
  phase: string;
  health: Health;
  v2Percentage: number;
  effectivePercentage?: number;
  step: { index: number; of: number; percentage: number; next?: number };
  paused: { spec: boolean; request: boolean };
  autoPromote: boolean;
  observed?: NonNullable<RolloutPolicy['status']>['observed'];
  lastDecision?: NonNullable<RolloutPolicy['status']>['lastDecision'];
  requests: Array<{ action: string; token: string; accepted: boolean; message: string; time: string; pending: boolean }>;
  conditions: Condition[];
  events: EventView[];
}

export const EVENTS_SHOWN = 5;
/** Rows of the shards table (a swarm has up to MAX_SHARDS): shards in trouble first, the rest counted. */
export const SHARDS_SHOWN = 20;

const podSchema = z.looseObject({
  metadata: z.looseObject({ name: z.string(), labels: z.record(z.string(), z.string()).optional() }),
  spec: z.looseObject({ nodeName: z.string().optional() }).optional(),
  status: z
    .looseObject({
      phase: z.string().optional(),
      reason: z.string().optional(),
      conditions: z.array(z.looseObject({ type: z.string(), status: z.string() })).optional(),
      containerStatuses: z
        .array(
          z.looseObject({
            state: z
              .looseObject({
                waiting: z.looseObject({ reason: z.string().optional() }).optional(),
                terminated: z.looseObject({ reason: z.string().optional(), exitCode: z.number().optional() }).optional(),
              })
              .optional(),
          }),
        )
        .optional(),
    })
    .optional(),
});

const eventSchema = z.looseObject({
  type: z.string().optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
  count: z.number().optional(),
  lastTimestamp: z.string().nullable().optional(),
  eventTime: z.string().nullable().optional(),
  firstTimestamp: z.string().nullable().optional(),
  metadata: z.looseObject({ creationTimestamp: z.string().optional() }),
});

/** Pods as shown: by shard, newest attempt last; objects that are no pods are skipped. */
export function podViews(raw: readonly unknown[]): PodView[] {
  return raw
    .flatMap((o) => {
      const r = podSchema.safeParse(o);
      if (!r.success) return [];
      const p = r.data;
      const labels = p.metadata.labels ?? {};
      const container = p.status?.containerStatuses?.[0]?.state;
      const reason = p.status?.reason ?? container?.waiting?.reason ?? container?.terminated?.reason ?? '';
      const shard = labels[LABEL_SHARD];
      return [
        {
          name: p.metadata.name,
          ...(shard !== undefined && /^\d+$/.test(shard) ? { shard: Number(shard) } : {}),
          version: labels[LABEL_VERSION] ?? '',
          attempt: Number(labels[LABEL_ATTEMPT] ?? 0),
          phase: p.status?.phase ?? 'Pending',
          ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
          node: p.spec?.nodeName ?? '',
          reason,
        },
      ];
    })
    .sort((a, b) => (a.shard ?? 0) - (b.shard ?? 0) || a.attempt - b.attempt);
}

/** The newest EVENTS_SHOWN events, oldest first. */
export function eventViews(raw: readonly unknown[]): EventView[] {
  return raw
    .flatMap((o) => {
      const r = eventSchema.safeParse(o);
      if (!r.success) return [];
      const e = r.data;
      return [
        {
          time: e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp ?? '',
          type: e.type ?? '',
          reason: e.reason ?? '',
          message: e.message ?? '',
          count: e.count ?? 1,
        },
      ];
    })
    .sort((a, b) => a.time.localeCompare(b.time))
    .slice(-EVENTS_SHOWN);
}

/** kstatus' reading of the conditions the operator writes (an unobserved generation first). */
export function healthOf(
  metadata: { generation?: number | undefined; deletionTimestamp?: string | undefined },
  status: { observedGeneration?: number | undefined; conditions?: Condition[] | undefined } | undefined,
): Health {
  const generation = metadata.generation;
  if (metadata.deletionTimestamp)
    return {
      state: 'Terminating',
      reason: 'Deleting',
      message: `deleted at ${metadata.deletionTimestamp}: the operator removes its pods, then the object goes`,
    };
  if (generation !== undefined && status?.observedGeneration !== generation) {
    return {
      state: 'NotObserved',
      reason: 'LatestGenerationNotObserved',
      message: `generation ${generation} not observed by the operator yet (observed: ${status?.observedGeneration ?? 'none'})`,
    };
  }
  for (const [type, state] of [
    [STALLED, 'Stalled'],
    [RECONCILING, 'Reconciling'],
  ] as const) {
    const c = findCondition(status?.conditions, type);
    if (c?.status === 'True') return { state, reason: c.reason, message: c.message };
  }
  const ready = findCondition(status?.conditions, READY);
  if (ready?.status === 'True') return { state: 'Ready', reason: ready.reason, message: ready.message };
  return { state: 'Reconciling', reason: ready?.reason ?? 'NoConditions', message: ready?.message ?? 'the operator has written no Ready condition yet' };
}

/** The shards of a sharded swarm, by index; undefined for a single shard. */
export function shardViews(s: Swarm): ShardView[] | undefined {
  const shards = s.status?.shards ?? [];
  if (shards.length <= 1) return undefined;
  return [...shards]
    .sort((a, b) => a.index - b.index)
    .map((x) => ({
      index: x.index,
      indexes: x.indexes,
      pod: x.pod ?? '',
      node: x.node ?? '',
      version: x.version ?? '',
      phase: x.phase ?? 'Pending',
      completed: x.agents?.completed ?? 0,
      failed: x.agents?.failed ?? 0,
      total: x.agents?.total ?? 0,
      reason: x.reason ?? '',
      message: x.message ?? '',
    }));
}

export function swarmView(s: Swarm, pods: readonly unknown[], events: readonly unknown[]): SwarmView {
  const shards = shardViews(s);
  const st = s.status ?? {};
  const agents = st.agents ?? { total: swarmAgents(s.spec), completed: 0, failed: 0 };
  return {
    kind: 'Swarm',
    name: s.metadata.name,
    namespace: s.metadata.namespace ?? 'default',
    generation: s.metadata.generation ?? 0,
    phase: st.phase ?? 'Unknown',
    health: healthOf(s.metadata, st),
    ...(st.version ? { version: { decided: st.version, reason: st.versionReason ?? '', active: st.activeVersion ?? st.version } } : {}),
    ...(st.topology ? { topology: st.topology } : {}),
    agents: { ...agents, done: agents.completed + agents.failed },
    ...(st.deliveryRate !== undefined ? { deliveryRate: st.deliveryRate } : {}),
    ...(st.results
      ? {
          results: {
            location: st.results.location,
            stored: st.results.stored,
            bytes: st.results.bytes,
            pending: st.results.pending ?? 0,
            ...(st.results.lastError !== undefined ? { lastError: st.results.lastError } : {}),
          },
        }
      : {}),
    ...(st.fallback ? { fallback: st.fallback } : {}),
    fallbacks: st.fallbackHistory?.length ?? (st.fallback ? 1 : 0),
    ...(shards ? { shards } : {}),
    ...(st.startTime ? { startTime: st.startTime } : {}),
    ...(st.completionTime ? { completionTime: st.completionTime } : {}),
    pods: podViews(pods),
    events: eventViews(events),
  };
}

export function rolloutView(p: RolloutPolicy, events: readonly unknown[]): RolloutView {
  const st = p.status ?? {};
  const steps = p.spec.steps ?? [];
  const index = st.currentStep ?? -1;
  const percentage = index >= 0 ? (steps[index]?.percentage ?? p.spec.v2Percentage) : p.spec.v2Percentage;
  const next = steps.find((x, i) => i > index && x.percentage > percentage)?.percentage;
  const annotations = p.metadata.annotations ?? {};
  const requests = (['pause', 'promote', 'abort', 'retry'] as const).flatMap((action) => {
    const handled = st.requests?.[action];
    const asked = action === 'pause' ? (annotations[ROLLOUT_ANNOTATIONS.paused] === 'true' ? 'true' : '') : annotations[ROLLOUT_ANNOTATIONS[action]];
    if (!handled && !asked) return [];
    const pending = (asked ?? '') !== (handled?.token ?? '');
    return [
      {
        action,
        token: asked ?? handled?.token ?? '',
        accepted: handled?.accepted ?? false,
        message: pending ? 'not handled by the operator yet' : (handled?.message ?? ''),
        time: handled?.time ?? '',
        pending,
      },
    ];
  });
  return {
    kind: 'RolloutPolicy',
    name: p.metadata.name,
    namespace: p.metadata.namespace ?? 'default',
    generation: p.metadata.generation ?? 0,
    phase: st.phase ?? 'Unknown',
    health: healthOf(p.metadata, st),
    v2Percentage: p.spec.v2Percentage,
    ...(st.effectivePercentage !== undefined ? { effectivePercentage: st.effectivePercentage } : {}),
    step: { index, of: steps.length, percentage, ...(next !== undefined ? { next } : {}) },
    paused: { spec: p.spec.paused, request: annotations[ROLLOUT_ANNOTATIONS.paused] === 'true' },
    autoPromote: p.spec.autoPromote,
    ...(st.observed ? { observed: st.observed } : {}),
    ...(st.lastDecision ? { lastDecision: st.lastDecision } : {}),
    requests,
    conditions: st.conditions ?? [],
    events: eventViews(events),
  };
}

/** Columns padded to their widest cell. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>, indent = '  '): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => indent + cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** "3m12s ago"-style ages relative to now. */
export function age(time: string | undefined, now: Date): string {
  const t = time ? Date.parse(time) : NaN;
  if (Number.isNaN(t)) return '-';
  const s = Math.max(0, Math.round((now.getTime() - t) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

const fields = (rows: ReadonlyArray<readonly [string, string]>): string => {
  const w = Math.max(...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, v]) => `${`${k}:`.padEnd(w)}  ${v}`).join('\n') + '\n';
};

const healthLine = (h: Health): string => `${h.state} (${h.reason}): ${h.message}`;

function eventsBlock(events: readonly EventView[], now: Date): string {
  if (events.length === 0) return 'Events:  none\n';
  return `Events (last ${EVENTS_SHOWN}):\n${table(
    ['AGE', 'TYPE', 'REASON', 'MESSAGE'],
    events.map((e) => [age(e.time, now), e.type, e.reason, e.count > 1 ? `${e.message} (x${e.count})` : e.message]),
  )}`;
}

const resultsLine = (r: NonNullable<SwarmView['results']>): string =>
  `${r.stored} stored (${r.bytes} bytes)${r.pending ? `, ${r.pending} pending` : ''} at ${r.location}${r.lastError !== undefined ? `; storing fails: ${r.lastError}` : ''}`;

/** A shard that needs a look: failed, waiting with a reason, or fallen back. */
const troubled = (x: ShardView): boolean => x.phase === 'Failed' || x.phase === 'Pending' || x.failed > 0 || x.reason !== '';

/** The shards table, at most SHARDS_SHOWN rows: the troubled shards first, then by index; the rest counted. */
export function shardsBlock(shards: readonly ShardView[]): string {
  const shown = [...shards.filter(troubled), ...shards.filter((x) => !troubled(x))].slice(0, SHARDS_SHOWN).sort((a, b) => a.index - b.index);
  const rows = shown.map((x) => [
    String(x.index),
    x.indexes,
    x.node || '-',
    x.version || '-',
    x.phase,
    String(x.completed),
    String(x.failed),
    String(x.total),
    x.reason ? `${x.reason}${x.message ? `: ${x.message}` : ''}`.replace(/\s+/g, ' ').slice(0, 120) : '-',
  ]);
  const rest = shards.length - shown.length;
  const done = shards.filter((x) => x.phase === 'Succeeded').length;
  return `Shards (${shards.length}, ${done} succeeded):\n${table(['SHARD', 'INDEXES', 'NODE', 'VERSION', 'PHASE', 'COMPLETED', 'FAILED', 'TOTAL', 'REASON'], rows)}${rest > 0 ? `  ... ${rest} more shards without trouble (-o json shows all)\n` : ''}`;
}

export function formatSwarm(v: SwarmView, now = new Date()): string {
  const pct = (n: number) => `${Math.round(n * 10) / 10}%`;
  const rows: Array<[string, string]> = [
    ['Name', `${v.namespace}/${v.name}`],
    ['Phase', v.phase],
    ['Health', healthLine(v.health)],
    [
      'Version',
      v.version
        ? `${v.version.active}${v.version.active !== v.version.decided ? ` (decided ${v.version.decided})` : ''}: ${v.version.reason}`
        : 'not decided yet',
    ],
    ['Topology', v.topology ?? '-'],
    ['Agents', `${v.agents.done}/${v.agents.total} done: ${v.agents.completed} completed, ${v.agents.failed} failed`],
    ['Delivery', v.deliveryRate !== undefined ? pct(v.deliveryRate) : '-'],
    ...(v.results ? ([['Results', resultsLine(v.results)]] as Array<[string, string]>) : []),
    [
      'Fallback',
      v.fallback
        ? `${v.fallback.from} -> ${v.fallback.to} ${age(v.fallback.time, now)} ago: ${v.fallback.reason}${v.fallbacks > 1 ? ` (${v.fallbacks} fallbacks)` : ''}`
        : 'none',
    ],
    ['Started', v.startTime ? `${v.startTime} (${age(v.startTime, now)} ago)` : '-'],
    ...(v.completionTime ? ([['Finished', `${v.completionTime} (${age(v.completionTime, now)} ago)`]] as Array<[string, string]>) : []),
  ];
  const sharded = v.pods.some((p) => p.shard !== undefined);
  const podRow = (p: PodView) => [
    ...(sharded ? [p.shard === undefined ? '-' : String(p.shard)] : []),
    p.name,
    p.version,
    p.phase,
    p.ready ? 'true' : 'false',
    p.node || '-',
    p.reason || '-',
  ];
  const pods = v.pods.length
    ? `Pods:\n${table([...(sharded ? ['SHARD'] : []), 'NAME', 'VERSION', 'PHASE', 'READY', 'NODE', 'REASON'], v.pods.map(podRow))}`
    : 'Pods:  none\n';
  return fields(rows) + (v.shards ? shardsBlock(v.shards) : '') + pods + eventsBlock(v.events, now);
}

export function formatRollout(v: RolloutView, now = new Date()): string {
  const o = v.observed;
  const stepText = v.step.index >= 0 ? `step ${v.step.index + 1} of ${v.step.of} (${v.step.percentage}%)` : `spec.v2Percentage (${v.step.percentage}%)`;
  const rows: Array<[string, string]> = [
    ['Name', `${v.namespace}/${v.name}`],
    ['Phase', v.phase],
    ['Health', healthLine(v.health)],
    ['V2 share', `${v.effectivePercentage ?? v.v2Percentage}% of new swarms (spec.v2Percentage ${v.v2Percentage}%)`],
    ['Step', `${stepText}${v.step.next !== undefined ? `, next ${v.step.next}%${v.autoPromote ? ' when the gates hold' : ' on promote'}` : ', last'}`],
    [
      'Paused',
      v.paused.spec || v.paused.request
        ? `yes (${[v.paused.spec ? 'spec.paused' : '', v.paused.request ? 'kubectl swarm rollout pause' : ''].filter(Boolean).join(', ')})`
        : 'no',
    ],
    [
      'Observed',
      o
        ? `${o.v2Swarms} V2 swarms (${o.fallbacks} fell back: ${o.fallbackRate}%), ${o.v1Swarms} V1, delivery ${o.deliveryRate !== undefined ? `${o.deliveryRate}%` : '-'} over ${o.finishedV2Swarms} finished`
        : '-',
    ],
    ['Last decision', v.lastDecision ? `${v.lastDecision.from}% -> ${v.lastDecision.to}% ${age(v.lastDecision.time, now)} ago: ${v.lastDecision.reason}` : '-'],
  ];
  const requests = v.requests.length
    ? `Requests:\n${table(
        ['ACTION', 'TOKEN', 'STATE', 'MESSAGE'],
        v.requests.map((r) => [r.action, r.token || '-', r.pending ? 'pending' : r.accepted ? 'done' : 'refused', r.message]),
      )}`
    : '';
  const conditions = `Conditions:\n${table(
    ['TYPE', 'STATUS', 'REASON', 'MESSAGE'],
    v.conditions.map((c) => [c.type, c.status, c.reason, c.message]),
  )}`;
  return fields(rows) + requests + conditions + eventsBlock(v.events, now);
}
