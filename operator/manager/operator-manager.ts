// Wires the operator together: informers on Swarms and coordinator pods feed
// the Swarm controller's queue; only the elected leader reconciles; /metrics,
// /healthz and /readyz are served throughout.
//
// Losing the Lease ends the operator, as client-go's OnStoppedLeading (exit)
// and controller-runtime's manager ("leader election lost") do: `lost`
// settles and `cfn operator` exits non-zero; the Deployment starts a fresh
// process that campaigns again. Rebuilding in place would mean new queues,
// informers, caches and the reconciler's own memory (namespace identities,
// the pod index), all filled while another process was acting: a fresh
// process has none of that to get wrong.
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { Controller } from '../controller/controller.js';
import { ROLLOUT_POLICY_RESOURCE, SWARM_RESOURCE } from '../api/common.js';
import { KubeClient, resourcePath } from '../k8s/client.js';
import { EventRecorder } from '../k8s/events.js';
import { Informer } from '../k8s/informer.js';
import { LeaderElector } from '../k8s/leader-election.js';
import { createOperatorMetrics } from '../observability/metrics.js';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../api/common.js';
import { swarmKeyOfPod, SwarmReconciler } from '../swarm/swarm-reconciler.js';
import { swarm as swarmSchema } from '../api/swarm.js';
import { RolloutPolicyReconciler } from '../rollout/rollout-policy-reconciler.js';
import { parsePolicies, RolloutRouter } from '../rollout/rollout-router.js';
import type { CoordinatorIdentity } from '../swarm/coordinator-rbac.js';
import type { Swarm } from '../api/swarm.js';
import type { CoordinationVersion } from '../coordination/types.js';
import type { KubeObject } from '../k8s/client.js';
import type { OperatorMetrics } from '../observability/metrics.js';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

/** Concurrent Swarm reconciles unless `workers` says otherwise (`cfn operator --workers`, the chart's `workers`). */
export const DEFAULT_SWARM_WORKERS = 8;

export interface OperatorOptions {
  logger: Logger;
  kubeconfig?: string;
  client?: KubeClient;
  /** Watch only these namespaces; all when empty. */
  namespaces?: string[];
  image: string;
  imagePullPolicy?: 'IfNotPresent' | 'Always' | 'Never';
  workers?: number;
  /** Port of /metrics, /healthz, /readyz; 0 picks a free one; -1 serves nothing. */
  metricsPort?: number;
  metricsHost?: string;
  leaderElection?: {
    enabled: boolean;
    namespace: string;
    name?: string;
    identity?: string;
    leaseDurationSeconds?: number;
    renewDeadlineSeconds?: number;
    retryPeriodSeconds?: number;
  };
  defaultVersion?: CoordinationVersion;
  operatorVersion?: CoordinationVersion;
  /** Coordinator pods' identity (coordinator-rbac.ts); default per-swarm. */
  coordinatorIdentity?: CoordinatorIdentity;
}

export interface RunningOperator {
  metrics: OperatorMetrics;
  controller: Controller;
  policyController: Controller;
  port: number | undefined;
  isLeader(): boolean;
  /** Settles once the operator lost its Lease and stopped all work (it never leads again). */
  lost: Promise<void>;
  stop(): Promise<void>;
}

const swarmPath = (ns?: string) => resourcePath({ ...SWARM_RESOURCE, ...(ns ? { namespace: ns } : {}) });
const policyPath = (ns?: string) => resourcePath({ ...ROLLOUT_POLICY_RESOURCE, ...(ns ? { namespace: ns } : {}) });
const podPath = (ns?: string) => resourcePath({ group: '', version: 'v1', plural: 'pods', ...(ns ? { namespace: ns } : {}) });
const keyOf = (o: KubeObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export async function startOperator(opts: OperatorOptions): Promise<RunningOperator> {
  const log = opts.logger;
  const client = opts.client ?? KubeClient.load(opts.kubeconfig);
  const metrics = createOperatorMetrics();
  client.onResponse = (method, status, seconds) => {
    metrics.restClientRequestDuration.observe({ verb: method }, seconds);
    metrics.restClientRequests.inc({ code: String(status), method });
  };
  const recorder = new EventRecorder(client, 'swarm-operator', (e) => log.warn({ err: String(e) }, 'event not recorded'));
  const namespaces = opts.namespaces?.length ? opts.namespaces : [undefined];

  // Pods indexed by the swarm they belong to, so a reconcile reads O(own pods).
  const podsBySwarm = new Map<string, Map<string, KubeObject>>();
  const swarmInformers: Informer[] = [];
  const podInformers: Informer[] = [];
  const policyInformers: Informer[] = [];
  const swarmInformerByNs = new Map<string, Informer>();
  const inNamespace = (informers: Informer[], ns: string) => informers.flatMap((i) => i.list()).filter((o) => (o.metadata?.namespace ?? '') === ns);
  const fromCache = (informers: Informer[], key: string) => {
    for (const inf of informers) {
      const o = inf.get(key);
      if (o) return o;
    }
    return undefined;
  };
  const router = new RolloutRouter((ns) => parsePolicies(inNamespace(policyInformers, ns)));
  const synced = new Set<Informer>();

  const reconciler = new SwarmReconciler({
    client,
    getSwarm: (key) => fromCache(swarmInformers, key),
    wrote: (obj) => (swarmInformerByNs.get(obj.metadata?.namespace ?? '') ?? swarmInformerByNs.get('*'))?.upsert(obj),
    listPods: (ns, name) => [...(podsBySwarm.get(`${ns}/${name}`)?.values() ?? [])],
    recorder,
    logger: log,
    metrics,
    image: opts.image,
    ...(opts.imagePullPolicy ? { imagePullPolicy: opts.imagePullPolicy } : {}),
    ...(opts.coordinatorIdentity ? { coordinatorIdentity: opts.coordinatorIdentity } : {}),
    versionPolicy: {
      defaultVersion: opts.defaultVersion ?? 'v2',
      ...(opts.operatorVersion ? { operatorVersion: opts.operatorVersion } : {}),
      rollout: (sw) => router.route(sw),
    },
  });
  const controller = new Controller({ name: 'swarm', reconcile: reconciler.reconcile, workers: opts.workers ?? DEFAULT_SWARM_WORKERS, metrics, logger: log });
  const policyReconciler = new RolloutPolicyReconciler({
    client,
    getPolicy: (key) => fromCache(policyInformers, key),
    listPolicies: (ns) => inNamespace(policyInformers, ns),
    listSwarms: (ns) =>
      inNamespace(swarmInformers, ns).flatMap((o): Swarm[] => {
        const r = swarmSchema.safeParse(o);
        return r.success ? [r.data] : [];
      }),
    recorder,
    logger: log,
    metrics,
  });
  const policyController = new Controller({ name: 'rolloutpolicy', reconcile: policyReconciler.reconcile, workers: 1, metrics, logger: log });
  const swarmPolicyKey = (o: KubeObject): string | undefined => {
    const policy = (o as { status?: { rollout?: { policy?: string } } }).status?.rollout?.policy;
    return policy ? `${o.metadata?.namespace ?? ''}/${policy}` : undefined;
  };

  for (const ns of namespaces) {
    const sw: Informer = new Informer({
      client,
      path: swarmPath(ns),
      onEvent: (_type, obj) => {
        controller.enqueue(keyOf(obj));
        const policyKey = swarmPolicyKey(obj);
        if (policyKey) policyController.enqueue(policyKey);
      },
      onError: (err, retryInMs) => log.warn({ err: String(err), retryInMs, resource: 'swarms' }, 'watch failed, restarting'),
      onSynced: () => synced.add(sw),
    });
    swarmInformers.push(sw);
    swarmInformerByNs.set(ns ?? '*', sw);
    const pods: Informer = new Informer({
      client,
      path: podPath(ns),
      labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY}`,
      onEvent: (type, obj) => {
        const swarmKey = swarmKeyOfPod(obj);
        if (!swarmKey) return;
        let index = podsBySwarm.get(swarmKey);
        if (!index) podsBySwarm.set(swarmKey, (index = new Map()));
        if (type === 'delete') index.delete(keyOf(obj));
        else index.set(keyOf(obj), obj);
        if (index.size === 0) podsBySwarm.delete(swarmKey);
        controller.enqueue(swarmKey);
      },
      onError: (err, retryInMs) => log.warn({ err: String(err), retryInMs, resource: 'pods' }, 'watch failed, restarting'),
      onSynced: () => synced.add(pods),
    });
    podInformers.push(pods);
    const policies: Informer = new Informer({
      client,
      path: policyPath(ns),
      onEvent: (_type, obj) => {
        policyController.enqueue(keyOf(obj));
        // Swarms waiting for their policy (or the namespace default) are routed now.
        for (const sw of inNamespace(swarmInformers, obj.metadata?.namespace ?? '')) {
          if (!(sw as { status?: { version?: string } }).status?.version) controller.enqueue(keyOf(sw));
        }
      },
      onError: (err, retryInMs) => log.warn({ err: String(err), retryInMs, resource: 'rolloutpolicies' }, 'watch failed, restarting'),
      onSynced: () => synced.add(policies),
    });
    policyInformers.push(policies);
  }

  metrics.setSwarmSource(function* () {
    for (const inf of swarmInformers) {
      for (const o of inf.list()) {
        const st = (o as { status?: { phase?: string; activeVersion?: string; deliveryRate?: number } }).status;
        yield {
          namespace: o.metadata?.namespace ?? '',
          name: o.metadata?.name ?? '',
          phase: st?.phase,
          version: st?.activeVersion,
          deliveryRate: st?.deliveryRate,
        };
      }
    }
  });

  let leading = false;
  let stopping = false;
  let lostLease = false;
  let markLost!: () => void;
  const lost = new Promise<void>((resolve) => (markLost = resolve));
  const stopWork = async () => {
    await Promise.all([controller.stop(), policyController.stop()]);
    // The last decisions' events, bounded: shutdown must not hang on an unreachable API server.
    await Promise.race([recorder.idle(), new Promise((r) => setTimeout(r, 5000).unref())]);
    await Promise.all([...swarmInformers, ...podInformers, ...policyInformers].map((i) => i.stop()));
  };
  const startWork = () => {
    leading = true;
    metrics.leaderElectionMaster.set({ name: 'swarm-operator' }, 1);
    log.info('started leading: reconciling');
    // Policies and pods first: a swarm's first reconcile should see its policy.
    for (const inf of [...policyInformers, ...podInformers, ...swarmInformers]) inf.start();
    controller.start();
    policyController.start();
  };

  const le = opts.leaderElection?.enabled
    ? new LeaderElector({
        client,
        namespace: opts.leaderElection.namespace,
        name: opts.leaderElection.name ?? 'swarm-operator-leader',
        identity: opts.leaderElection.identity ?? `${hostname()}-${process.pid}`,
        ...(opts.leaderElection.leaseDurationSeconds ? { leaseDurationSeconds: opts.leaderElection.leaseDurationSeconds } : {}),
        ...(opts.leaderElection.renewDeadlineSeconds ? { renewDeadlineSeconds: opts.leaderElection.renewDeadlineSeconds } : {}),
        ...(opts.leaderElection.retryPeriodSeconds ? { retryPeriodSeconds: opts.leaderElection.retryPeriodSeconds } : {}),
        onStartedLeading: startWork,
        onStoppedLeading: () => {
          leading = false;
          metrics.leaderElectionMaster.set({ name: 'swarm-operator' }, 0);
          if (stopping) return;
          // Not ready and not healthy from now on: this process reconciles nothing ever again.
          lostLease = true;
          log.error('lost leadership: stopping all work; the process ends');
          void stopWork().finally(markLost);
        },
        onError: (e) => log.warn({ err: String(e) }, 'leader election'),
      })
    : undefined;
  metrics.leaderElectionMaster.set({ name: 'swarm-operator' }, 0);
  if (le) le.start();
  else startWork();

  let server: Server | undefined;
  let port: number | undefined;
  if ((opts.metricsPort ?? 8080) >= 0) {
    server = createServer((req, res) => {
      void (async () => {
        if (req.url === '/metrics') {
          res.setHeader('Content-Type', metrics.registry.contentType);
          res.end(await metrics.registry.metrics());
        } else if (req.url === '/healthz') {
          res.statusCode = lostLease ? 503 : 200;
          res.end(lostLease ? 'leadership lost' : 'ok');
        } else if (req.url === '/readyz') {
          // A standby is ready (it serves and campaigns); a leader once its caches synced;
          // a process that lost its lease never again.
          const ok = !lostLease && (!leading || synced.size === swarmInformers.length + podInformers.length + policyInformers.length);
          res.statusCode = ok ? 200 : 503;
          res.end(ok ? 'ok' : lostLease ? 'leadership lost' : 'caches not synced');
        } else {
          res.statusCode = 404;
          res.end();
        }
      })();
    });
    await new Promise<void>((resolve) => server!.listen(opts.metricsPort ?? 8080, opts.metricsHost ?? '0.0.0.0', resolve));
    port = (server.address() as AddressInfo).port;
  }

  return {
    metrics,
    controller,
    policyController,
    port,
    isLeader: () => leading,
    lost,
    stop: async () => {
      stopping = true;
      await stopWork();
      await le?.stop();
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
  };
}
