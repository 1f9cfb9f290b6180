// What the Swarm reconciler, its SwarmRun and each ShardRun are given: the
// API client, the caches, the event recorder and the operator's settings.
import type { VersionPolicy } from '../coordination/version/decide-version.js';
import type { KubeClient, KubeObject } from '../k8s/client.js';
import type { EventRecorder } from '../k8s/events.js';
import type { OperatorMetrics } from '../observability/metrics.js';
import type { CoordinatorIdentity } from './coordinator-rbac.js';
import type { Logger } from 'pino';

export interface SwarmReconcilerDeps {
  client: KubeClient;
  /** Cached reads (informers); the API server is asked when the cache may lag. */
  getSwarm: (key: string) => KubeObject | undefined;
  listPods: (namespace: string, swarmName: string) => KubeObject[];
  recorder: EventRecorder;
  logger: Logger;
  metrics?: OperatorMetrics;
  /** Told about every Swarm this reconciler writes (to refresh the cache). */
  wrote?: (obj: KubeObject) => void;
  image: string;
  imagePullPolicy?: 'IfNotPresent' | 'Always' | 'Never';
  versionPolicy: VersionPolicy;
  /** How coordinator pods get their least-privilege identity (coordinator-rbac.ts); default per-swarm. */
  coordinatorIdentity?: CoordinatorIdentity;
  now?: () => Date;
}
