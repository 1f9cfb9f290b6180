// Prometheus metrics of the operator: controller-runtime and workqueue names
// (so existing dashboards work) plus the swarm metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface OperatorMetrics {
  registry: Registry;
  reconcileTotal: Counter<'controller' | 'result'>;
  reconcileErrors: Counter<'controller'>;
  reconcileTime: Histogram<'controller'>;
  restClientRequestDuration: Histogram<'verb'>;
  restClientRequests: Counter<'code' | 'method'>;
  activeWorkers: Gauge<'controller'>;
  workqueueDepth: Gauge<'name'>;
  workqueueAdds: Counter<'name'>;
  workqueueRetries: Counter<'name'>;
  workqueueQueueDuration: Histogram<'name'>;
  swarmPhase: Gauge<'phase' | 'version'>;
  swarmDeliveryRate: Gauge<'namespace' | 'name'>;
  swarmCoordinationSeconds: Histogram<'version'>;
  swarmFallbackTotal: Counter<'reason'>;
  leaderElectionMaster: Gauge<'name'>;
  rolloutEffectivePercentage: Gauge<'policy'>;
  rolloutRoutedTotal: Counter<'policy' | 'version'>;
  rolloutFallbackRate: Gauge<'policy'>;
  rolloutDeliveryRate: Gauge<'policy'>;
  rolloutObservedV2Swarms: Gauge<'policy'>;
  rolloutObservedFinishedV2Swarms: Gauge<'policy'>;
  rolloutGateMaxFallbackRate: Gauge<'policy'>;
  rolloutGateMinDeliveryRate: Gauge<'policy'>;
  rolloutGateMinSamples: Gauge<'policy'>;
  rolloutPhase: Gauge<'policy' | 'phase'>;
  /** Where swarm_phase and swarm_delivery_rate read swarms from at scrape time. */
  setSwarmSource(source: () => Iterable<SwarmSample>): void;
  /** A work queue whose busiest worker workqueue_longest_running_processor_seconds reports at scrape time. */
  addQueue(name: string, queue: QueueSample): void;
}

export interface QueueSample {
  /** Seconds the longest reconcile in flight has run; 0 when none runs. */
  longestRunningSeconds(): number;
}

export interface SwarmSample {
  namespace: string;
  name: string;
  phase?: string;
  version?: string;
  deliveryRate?: number;
}

export function createOperatorMetrics(opts: { defaultMetrics?: boolean } = {}): OperatorMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let source: () => Iterable<SwarmSample> = () => [];
  // Counted from the operator's cache at scrape time, so always consistent with it.
  const swarmDeliveryRate = new Gauge({
    name: 'swarm_delivery_rate',
    help: 'Delivery rate of a Swarm: completed agents / total, 0-100',
    labelNames: ['namespace', 'name'],
    registers,
    collect() {
      this.reset();
      for (const s of source()) if (s.deliveryRate !== undefined) this.set({ namespace: s.namespace, name: s.name }, s.deliveryRate);
    },
  });
  const queues = new Map<string, QueueSample>();
  const workqueueLongestRunning = new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds the longest running processor for workqueue has been running',
    labelNames: ['name'],
    registers,
    collect() {
      for (const [name, q] of queues) this.set({ name }, q.longestRunningSeconds());
    },
  });
  const swarmPhase = new Gauge({
    name: 'swarm_phase',
    help: 'Number of Swarms per phase and version',
    labelNames: ['phase', 'version'],
    registers,
    collect() {
      this.reset();
      for (const s of source()) this.inc({ phase: s.phase ?? 'Pending', version: s.version ?? 'undecided' });
    },
  });
  const rollout = {
    rolloutEffectivePercentage: new Gauge({
      name: 'rollout_effective_percentage',
      help: 'Share of new Swarms routed to V2 by a RolloutPolicy',
      labelNames: ['policy'],
      registers,
    }),
    rolloutRoutedTotal: new Counter({
      name: 'rollout_routed_total',
      help: 'Swarms routed by a RolloutPolicy, per version',
      labelNames: ['policy', 'version'],
      registers,
    }),
    rolloutFallbackRate: new Gauge({
      name: 'rollout_fallback_rate',
      help: 'Fallback rate (percent) of the V2 swarms in the current window of a RolloutPolicy',
      labelNames: ['policy'],
      registers,
    }),
    rolloutDeliveryRate: new Gauge({
      name: 'rollout_delivery_rate',
      help: 'Mean delivery rate (percent) of the finished V2 swarms in the current window of a RolloutPolicy; absent before one finished',
      labelNames: ['policy'],
      registers,
    }),
    rolloutObservedV2Swarms: new Gauge({
      name: 'rollout_observed_v2_swarms',
      help: "V2 swarms in the current window of a RolloutPolicy (the fallback rate's sample)",
      labelNames: ['policy'],
      registers,
    }),
    rolloutObservedFinishedV2Swarms: new Gauge({
      name: 'rollout_observed_finished_v2_swarms',
      help: "Finished V2 swarms in the current window of a RolloutPolicy (the delivery rate's sample)",
      labelNames: ['policy'],
      registers,
    }),
    rolloutGateMaxFallbackRate: new Gauge({
      name: 'rollout_gate_max_fallback_rate',
      help: 'maxFallbackRate gate (percent) of the current step of a RolloutPolicy',
      labelNames: ['policy'],
      registers,
    }),
    rolloutGateMinDeliveryRate: new Gauge({
      name: 'rollout_gate_min_delivery_rate',
      help: 'minDeliveryRate gate (percent) of the current step of a RolloutPolicy',
      labelNames: ['policy'],
      registers,
    }),
    rolloutGateMinSamples: new Gauge({
      name: 'rollout_gate_min_samples',
      help: 'minSamples gate of the current step of a RolloutPolicy: fewer samples are not judged',
      labelNames: ['policy'],
      registers,
    }),
    rolloutPhase: new Gauge({ name: 'rollout_phase', help: 'Phase of a RolloutPolicy (1 for the current phase)', labelNames: ['policy', 'phase'], registers }),
  };
  return {
    ...rollout,
    setSwarmSource: (fn) => {
      source = fn;
    },
    addQueue: (name, q) => {
      queues.set(name, q);
      workqueueLongestRunning.set({ name }, 0);
    },

    swarmPhase,
    swarmDeliveryRate,
    registry,
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    restClientRequestDuration: new Histogram({
      name: 'rest_client_request_duration_seconds',
      help: 'Request latency in seconds to the response headers, by verb',
      labelNames: ['verb'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    restClientRequests: new Counter({
      name: 'rest_client_requests_total',
      help: 'Number of HTTP requests, by status code (0: no answer) and method',
      labelNames: ['code', 'method'],
      registers,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    }),
    workqueueDepth: new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: ['name'], registers }),
    workqueueAdds: new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: ['name'], registers }),
    workqueueRetries: new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: ['name'], registers }),
    workqueueQueueDuration: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name'],
      buckets: [0.001, 0.01, 0.1, 1, 10, 100],
      registers,
    }),
    swarmCoordinationSeconds: new Histogram({
      name: 'swarm_coordination_seconds',
      help: 'Coordination time of finished Swarms',
      labelNames: ['version'],
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600],
      registers,
    }),
    swarmFallbackTotal: new Counter({ name: 'swarm_fallback_total', help: 'V2 to V1 fallbacks by reason', labelNames: ['reason'], registers }),
    leaderElectionMaster: new Gauge({
      name: 'leader_election_master_status',
      help: 'Whether this process is the leader (1) or not (0)',
      labelNames: ['name'],
      registers,
    }),
  };
}
