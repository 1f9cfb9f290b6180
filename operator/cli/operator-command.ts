// `cfn operator`: runs the operator against KUBECONFIG (or in-cluster config)
// until SIGTERM/SIGINT, then shuts down gracefully (lease released), or until
// it loses its Lease: then it exits with EXIT.leadershipLost and its
// Deployment starts a fresh process (operator-manager.ts says why).
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { packageRoot } from '../util/package-root.js';
import { chooseKubeconfig, KubeClient } from '../k8s/client.js';
import { DEFAULT_SWARM_WORKERS, startOperator } from '../manager/operator-manager.js';
import { ensureCrds } from '../release/ensure-crds.js';
import { releaseVersion } from '../util/release-version.js';
import { COORDINATOR_IDENTITIES } from '../swarm/coordinator-rbac.js';
import { createLogger, resolveLogLevel } from '../observability/logger.js';
import { EXIT, UsageError } from './usage-error.js';
import type { CliIo } from './io.js';
import type { RunningOperator } from '../manager/operator-manager.js';
import type { Logger } from '../observability/logger.js';

export const OPERATOR_HELP = `Usage: cfn operator [options]

Runs the swarm-operator: watches Swarms and RolloutPolicies and runs each
swarm's coordinator pod. Uses --kubeconfig, else $KUBECONFIG, else (outside a
cluster) the local control plane's (.local/cluster/kubeconfig, written by
\`npm run cluster:up\`) when it exists, else ~/.kube/config or the in-cluster
service account. The log says which.

Options:
  --kubeconfig FILE            kubeconfig to use
  --namespaces NS[,NS]         watch only these namespaces (default: all)
  --image IMAGE                coordinator image (default $COORDINATOR_IMAGE or swarm-operator:dev)
  --image-pull-policy P        IfNotPresent | Always | Never (default IfNotPresent)
  --workers N                  concurrent reconciles (default ${DEFAULT_SWARM_WORKERS})
  --metrics-port N             /metrics, /healthz, /readyz port (default 8080; -1 disables)
  --metrics-host HOST          bind address (default 0.0.0.0)
  --leader-elect / --no-leader-elect   (default: on)
  --leader-election-namespace NS       (default $POD_NAMESPACE or default)
  --default-version v1|v2      version of Swarms no spec, env or policy decides (default v2)
  --manage-crds               bring the swarm.cfn.dev CRDs to this release by server-side
                               apply before watching (never over a newer release's; needs
                               get and patch on them: the chart's crds.manage)
  --coordinator-identity per-swarm|shared
                               coordinator pods' identity (default $COORDINATOR_IDENTITY or
                               per-swarm): per-swarm makes a ServiceAccount, Role and
                               RoleBinding per Swarm; shared uses one per namespace and needs
                               the admission policy the chart installs
                               (config/rbac/coordinator_admission_policy.yaml)

Environment: COORDINATION_VERSION (v1|v2) pins the version of new auto Swarms; LOG_LEVEL.

Exit codes: 0 after SIGTERM/SIGINT (lease released); 4 when the operator lost
its leader Lease (it stopped all work; its Deployment starts a fresh process).
`;

const optionsSchema = z.object({
  kubeconfig: z.string().optional(),
  namespaces: z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a namespace name')).default([]),
  image: z.string().min(1),
  imagePullPolicy: z.enum(['IfNotPresent', 'Always', 'Never']),
  workers: z.number().int().min(1).max(64),
  metricsPort: z.number().int().min(-1).max(65535),
  metricsHost: z.string().min(1),
  leaderElect: z.boolean(),
  leaderElectionNamespace: z.string().min(1),
  defaultVersion: z.enum(['v1', 'v2']),
  operatorVersion: z.enum(['v1', 'v2']).optional(),
  coordinatorIdentity: z.enum(COORDINATOR_IDENTITIES),
  manageCrds: z.boolean(),
});

const num = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`${flag}: expected an integer, got ${JSON.stringify(v)}`);
  return Number(v);
};

export function parseOperatorOptions(args: readonly string[], env: NodeJS.ProcessEnv) {
  const { values } = parseArgs({
    args: [...args],
    options: {
      help: { type: 'boolean', short: 'h' },
      kubeconfig: { type: 'string' },
      namespaces: { type: 'string' },
      image: { type: 'string' },
      'image-pull-policy': { type: 'string' },
      workers: { type: 'string' },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
      'leader-elect': { type: 'boolean' },
      'no-leader-elect': { type: 'boolean' },
      'leader-election-namespace': { type: 'string' },
      'default-version': { type: 'string' },
      'coordinator-identity': { type: 'string' },
      'manage-crds': { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return { help: true as const };
  const envVersion = env.COORDINATION_VERSION;
  if (envVersion !== undefined && envVersion !== 'v1' && envVersion !== 'v2' && envVersion !== '') {
    throw new UsageError(`COORDINATION_VERSION: expected v1 or v2, got ${JSON.stringify(envVersion)}`);
  }
  const r = optionsSchema.safeParse({
    kubeconfig: values.kubeconfig,
    namespaces: values.namespaces
      ? values.namespaces
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [],
    image: values.image ?? env.COORDINATOR_IMAGE ?? 'swarm-operator:dev',
    imagePullPolicy: values['image-pull-policy'] ?? 'IfNotPresent',
    workers: num(values.workers, '--workers') ?? DEFAULT_SWARM_WORKERS,
    metricsPort: num(values['metrics-port'], '--metrics-port') ?? 8080,
    metricsHost: values['metrics-host'] ?? '0.0.0.0',
    leaderElect: values['no-leader-elect'] ? false : (values['leader-elect'] ?? true),
    leaderElectionNamespace: values['leader-election-namespace'] ?? env.POD_NAMESPACE ?? 'default',
    defaultVersion: values['default-version'] ?? 'v2',
    operatorVersion: envVersion || undefined,
    coordinatorIdentity: values['coordinator-identity'] ?? (env.COORDINATOR_IDENTITY || 'per-swarm'),
    manageCrds: values['manage-crds'] ?? false,
  });
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new UsageError(`--${String(issue.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${issue.message}`);
  }
  return { help: false as const, ...r.data };
}

/** Resolves on the first SIGINT or SIGTERM. */
export const untilSignal = (): Promise<NodeJS.Signals> =>
  new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });

/** For tests running the command in-process: their logger, and a stop other than a signal. */
export interface OperatorCommandHooks {
  logger?: Logger;
  /** Stops the operator when it settles (default: the first SIGINT or SIGTERM). */
  until?: Promise<unknown>;
  onStarted?: (running: RunningOperator) => void;
}

export async function operatorCommand(args: readonly string[], io: CliIo, hooks: OperatorCommandHooks = {}): Promise<number> {
  const o = parseOperatorOptions(args, io.env);
  if (o.help) {
    io.stdout.write(OPERATOR_HELP);
    return EXIT.ok;
  }
  const logger = hooks.logger ?? createLogger({ name: 'swarm-operator', level: resolveLogLevel(io.env.LOG_LEVEL ?? 'info') });
  const kubeconfig = chooseKubeconfig({ flag: o.kubeconfig, env: io.env, repoRoot: packageRoot(), existsSync });
  logger.info({ kubeconfig: kubeconfig.description, source: kubeconfig.source }, `kubeconfig: ${kubeconfig.description} (${kubeconfig.source})`);
  const client = KubeClient.load(kubeconfig.path);
  if (o.manageCrds) await ensureCrds({ client, logger, release: releaseVersion() });
  const running = await startOperator({
    logger,
    client,
    namespaces: o.namespaces,
    image: o.image,
    imagePullPolicy: o.imagePullPolicy,
    workers: o.workers,
    metricsPort: o.metricsPort,
    metricsHost: o.metricsHost,
    leaderElection: { enabled: o.leaderElect, namespace: o.leaderElectionNamespace },
    defaultVersion: o.defaultVersion,
    coordinatorIdentity: o.coordinatorIdentity,
    ...(o.operatorVersion ? { operatorVersion: o.operatorVersion } : {}),
  });
  logger.info(
    { metricsPort: running.port, namespaces: o.namespaces.length ? o.namespaces : 'all', image: o.image, coordinatorIdentity: o.coordinatorIdentity },
    'operator started',
  );
  hooks.onStarted?.(running);
  const ended = await Promise.race([(hooks.until ?? untilSignal()).then((signal) => ({ signal })), running.lost.then(() => 'lost' as const)]);
  if (ended === 'lost') {
    await running.stop();
    logger.error({ exitCode: EXIT.leadershipLost }, 'leadership lost: exiting so that a fresh process campaigns');
    return EXIT.leadershipLost;
  }
  logger.info({ signal: ended.signal }, 'shutting down');
  await running.stop();
  return EXIT.ok;
}
