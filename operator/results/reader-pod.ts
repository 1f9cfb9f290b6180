// The short-lived pod `cfn results` runs to read a swarm's results from its
// claim: the project image running `cfn results --dir`, the claim mounted
// read-only, under the restricted Pod Security Standard, no API credential.
// It prints one page of records on stdout (reader-protocol.ts) and exits.
import { randomBytes } from 'node:crypto';
import { RESULTS_MOUNT_PATH } from './sink-factory.js';
import { LABEL_MANAGED_BY, POD_NAME_PREFIX_MAX } from '../api/common.js';

/** Labels the reader pods (not LABEL_SWARM: the operator takes pods with that label for coordinators). */
export const LABEL_RESULTS_OF = 'swarm.cfn.dev/results-of';
export const READER_CONTAINER = 'reader';
/** A reader pod left behind (the CLI killed) ends by itself. */
export const READER_DEADLINE_S = 600;

export interface ReaderPodOptions {
  namespace: string;
  swarm: string;
  claimName: string;
  /** The swarm's directory inside the claim (resultDir of its scope). */
  dir: string;
  image: string;
  imagePullPolicy?: 'IfNotPresent' | 'Always' | 'Never';
  /** The page: records from this index on, about this many bytes. */
  from: number;
  maxBytes: number;
}

export const readerPodName = (swarm: string): string => `${swarm.slice(0, POD_NAME_PREFIX_MAX)}-results-${randomBytes(3).toString('hex')}`;

export function readerPod(o: ReaderPodOptions, name = readerPodName(o.swarm)) {
  const dir = `${RESULTS_MOUNT_PATH}/${o.dir.replace(/^\/+|\/+$/g, '')}`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: o.namespace,
      labels: { [LABEL_RESULTS_OF]: o.swarm, [LABEL_MANAGED_BY]: 'cfn-results', 'app.kubernetes.io/name': 'swarm-results-reader' },
    },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      activeDeadlineSeconds: READER_DEADLINE_S,
      terminationGracePeriodSeconds: 0,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: READER_CONTAINER,
          image: o.image,
          imagePullPolicy: o.imagePullPolicy ?? 'IfNotPresent',
          args: ['results', '--dir', dir, '--from', String(o.from), '--max-bytes', String(o.maxBytes)],
          env: [{ name: 'LOG_LEVEL', value: 'fatal' }],
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
          resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '512Mi' } },
          terminationMessagePolicy: 'File',
          volumeMounts: [{ name: 'results', mountPath: RESULTS_MOUNT_PATH, readOnly: true }],
        },
      ],
      volumes: [{ name: 'results', persistentVolumeClaim: { claimName: o.claimName, readOnly: true } }],
    },
  };
}
