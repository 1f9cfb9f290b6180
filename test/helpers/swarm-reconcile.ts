// One reconcile of the Swarm reconciler against a client that records every
// call in order (the real API server: test/integration/operator): the unit
// tests of the reconciler, its SwarmRun state machine and its shards read
// what it wrote, created, deleted and recorded.
import pino from 'pino';
import type { SwarmResourceStatus } from '../../operator/api/swarm.js';
import type { ReconcileResult } from '../../operator/controller/controller.js';
import type { VersionPolicy } from '../../operator/coordination/version/decide-version.js';
import type { KubeClient, KubeObject } from '../../operator/k8s/client.js';
import { KubeApiError } from '../../operator/k8s/errors.js';
import type { EventRecorder } from '../../operator/k8s/events.js';
import { createOperatorMetrics } from '../../operator/observability/metrics.js';
import type { OperatorMetrics } from '../../operator/observability/metrics.js';
import { SwarmReconciler } from '../../operator/swarm/swarm-reconciler.js';

/** The namespace of the test Swarm (named `s`). */
export const NS = 'team';
/** The reconciler's clock. */
export const NOW = Date.parse('2026-12-04T12:00:00.000Z');
/** The time `msAgo` before NOW, as Kubernetes writes it (whole seconds). */
export const secs = (msAgo: number): string => new Date(NOW - msAgo).toISOString().replace(/\.\d+Z$/, 'Z');

export interface ReconcileOptions {
  /** The status write throws this error, `statusWriteFailures` times (default: every time). */
  statusWriteFails?: Error;
  statusWriteFailures?: number;
  /** What a GET of the Swarm returns (default: the cached Swarm). */
  live?: KubeObject;
  /** Other objects a GET finds, by path (else 404). */
  objects?: Record<string, unknown>;
  versionPolicy?: VersionPolicy;
}

export interface ReconcileRecord {
  result: ReconcileResult | void | undefined;
  /** What the reconcile threw (only with statusWriteFails: otherwise it is thrown on). */
  error: unknown;
  /**
   * Every client call in order: "status", "apply <kind>/<name>", "create <kind>/<name>",
   * "delete <kind>/<name>" (" now" with grace period 0), "finalizer <list> @<resourceVersion>", "get <kind>/<name>".
   */
  calls: string[];
  /** The calls that change something: no GET, no status write. */
  acted: string[];
  /** Writes other than the status, with full paths: "apply <path>", "create <path>". */
  writes: string[];
  /** The last status written, and the resourceVersion it was written on. */
  status: SwarmResourceStatus | undefined;
  statusVersion: string | undefined;
  created: KubeObject[];
  createdPods: string[];
  deleted: Array<{ name: string; grace: number | undefined }>;
  events: Array<{ type: string; reason: string; message: string }>;
  /** "Type Reason" of each event. */
  eventReasons: string[];
  /** "Type Reason: message" of each event. */
  eventLines: string[];
  metrics: OperatorMetrics;
  /** swarm_fallback_total by reason, and its sum. */
  fallbacks: Array<[string, number]>;
  fallbackTotal: number;
  /** The sum of rollout_routed_total. */
  routed: number;
  cond: (type: string) => NonNullable<SwarmResourceStatus['conditions']>[number] | undefined;
  shard: (index: number) => NonNullable<SwarmResourceStatus['shards']>[number] | undefined;
}

/** One reconcile of `<NS>/s` with `swarm` and `pods` in the cache. */
export async function reconcileOnce(swarm: KubeObject, pods: KubeObject[], opts: ReconcileOptions = {}): Promise<ReconcileRecord> {
  const calls: string[] = [];
  const writes: string[] = [];
  const statuses: Array<{ status: SwarmResourceStatus; version: string | undefined }> = [];
  const created: KubeObject[] = [];
  const deleted: Array<{ name: string; grace: number | undefined }> = [];
  const events: Array<{ type: string; reason: string; message: string }> = [];
  let failures = 0;
  const what = (path: string) => path.split('/').slice(-2).join('/');
  const client = {
    apply: async (path: string, obj: KubeObject, o: { subresource?: string }) => {
      if (o.subresource === 'status') {
        if (opts.statusWriteFails && failures < (opts.statusWriteFailures ?? Infinity)) {
          failures += 1;
          throw opts.statusWriteFails;
        }
        calls.push('status');
        statuses.push({ status: obj.status as SwarmResourceStatus, version: obj.metadata?.resourceVersion });
      } else {
        calls.push(`apply ${what(path)}`);
        writes.push(`apply ${path}`);
      }
      return { ...obj, metadata: { ...obj.metadata, resourceVersion: '11' } };
    },
    create: async (path: string, obj: KubeObject) => {
      calls.push(`create ${path.split('/').pop() ?? ''}/${obj.metadata?.name ?? ''}`);
      writes.push(`create ${path}`);
      created.push(obj);
      return obj;
    },
    mergePatch: async (_path: string, patch: { metadata?: { finalizers?: string[]; resourceVersion?: string } }) => {
      calls.push(`finalizer ${patch.metadata?.finalizers?.join(',') ?? ''} @${patch.metadata?.resourceVersion ?? ''}`);
      return patch;
    },
    delete: async (path: string, o?: { gracePeriodSeconds?: number }) => {
      calls.push(`delete ${what(path)}${o?.gracePeriodSeconds === 0 ? ' now' : ''}`);
      deleted.push({ name: path.split('/').pop() ?? '', grace: o?.gracePeriodSeconds });
      return {};
    },
    get: async (path: string) => {
      calls.push(`get ${what(path)}`);
      if (path.endsWith(`/namespaces/${NS}/swarms/s`)) return opts.live ?? swarm;
      const found = opts.objects?.[path];
      if (found !== undefined) return found;
      throw new KubeApiError(404, 'NotFound', 'not found', 'GET', path);
    },
  };
  const metrics = createOperatorMetrics({ defaultMetrics: false });
  const reconciler = new SwarmReconciler({
    client: client as unknown as KubeClient,
    getSwarm: () => swarm,
    listPods: () => pods,
    recorder: {
      record: async (_o: unknown, type: string, reason: string, message: string) => void events.push({ type, reason, message }),
    } as unknown as EventRecorder,
    logger: pino({ level: 'silent' }),
    metrics,
    image: 'img',
    versionPolicy: opts.versionPolicy ?? { defaultVersion: 'v2' },
    now: () => new Date(NOW),
  });
  let error: unknown;
  const result = await reconciler.reconcile(`${NS}/s`).catch((e: unknown) => {
    if (!opts.statusWriteFails) throw e;
    error = e;
    return undefined;
  });
  // Let what the reconcile started without awaiting land.
  await new Promise((r) => setImmediate(r));
  const last = statuses.at(-1);
  const fallbacks = (await metrics.swarmFallbackTotal.get()).values.map((v): [string, number] => [String(v.labels.reason), v.value]);
  const routed = (await metrics.rolloutRoutedTotal.get()).values.reduce((sum, v) => sum + v.value, 0);
  return {
    result,
    error,
    calls,
    acted: calls.filter((c) => !c.startsWith('get ') && c !== 'status'),
    writes,
    status: last?.status,
    statusVersion: last?.version,
    created,
    createdPods: created.filter((o) => o.kind === 'Pod').map((o) => o.metadata?.name ?? ''),
    deleted,
    events,
    eventReasons: events.map((e) => `${e.type} ${e.reason}`),
    eventLines: events.map((e) => `${e.type} ${e.reason}: ${e.message}`),
    metrics,
    fallbacks,
    fallbackTotal: fallbacks.reduce((sum, [, n]) => sum + n, 0),
    routed,
    cond: (type) => last?.status.conditions?.find((c) => c.type === type),
    shard: (index) => last?.status.shards?.find((e) => e.index === index),
  };
}
