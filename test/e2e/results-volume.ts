// A swarm's results on a hostPath volume of the node, and a witness of agent
// runs outside the pod: agents (in their own container, where they can write
// nothing shared) tell a listener on this machine their index as they start,
// and the test counts how many times each index ran.
import { readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { MODE, dropNamespace, hostAddress, kubectl, kubectlJson, operatorImage, waitFor } from './kube.js';

/** status.results of a Swarm, as the e2e tests read it. */
export const resultsStatusSchema = z
  .object({
    type: z.string(),
    location: z.string(),
    stored: z.number(),
    bytes: z.number(),
    pending: z.number().optional(),
    lastError: z.string().optional(),
  })
  .optional();

export interface RunWitness {
  /** An agent command that reports its run (its index, over TCP to this machine; it fails when it cannot), works a while and answers. */
  agent: string[];
  /** How many times each agent index ran, so far. */
  counts(): Map<number, number>;
  close(): Promise<void>;
}

/** Listens on the node's address (this machine: the bridge's gateway) for the runs of recording agents. */
export async function runWitness(): Promise<RunWitness> {
  const ip = await hostAddress();
  const counts = new Map<number, number>();
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (/^\d+$/.test(line)) counts.set(Number(line), (counts.get(Number(line)) ?? 0) + 1);
      }
    });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, ip, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    agent: ['bash', '-c', `echo "$AGENT_INDEX" >/dev/tcp/${ip}/${port} || exit 9; sleep 1; echo "done $AGENT_INDEX"`],
    counts: () => new Map(counts),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A flat V2 swarm of recording agents (RunWitness.agent) whose results volume is the claim `claim`. */
export const recordingSwarm = (name: string, objective: string, agents: number, claim: string, command: string[]) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: {
    objective,
    agents,
    topology: 'flat',
    coordination: { version: 'v2', fallbackEnabled: true, fallbackTimeoutSeconds: 60 },
    agent: { command, timeoutSeconds: 60, retries: 0, concurrency: 4 },
    v2: { shmSizeLimit: '64Mi' },
    results: { type: 'persistentVolumeClaim', claimName: claim },
  },
});

/** Runs `script` as root in a pod with the hostPath `dir` at /d; resolves with its log. */
export async function hostPathPod(ns: string, name: string, dir: string, script: string): Promise<string> {
  const image = await operatorImage();
  await kubectl(['apply', '-n', ns, '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        restartPolicy: 'Never',
        containers: [
          {
            name: 'c',
            image,
            imagePullPolicy: 'IfNotPresent',
            command: ['sh', '-c', script],
            securityContext: { runAsUser: 0 },
            volumeMounts: [{ name: 'd', mountPath: '/d' }],
          },
        ],
        volumes: [{ name: 'd', hostPath: { path: dir, type: 'DirectoryOrCreate' } }],
      },
    }),
  });
  await waitFor(
    `pod ${name} done`,
    async () => {
      const p = await kubectlJson(z.object({ status: z.object({ phase: z.string().optional() }) }), ['get', 'pod', '-n', ns, name]);
      if (p.status.phase === 'Failed') throw new Error(`pod ${name} failed`);
      return p.status.phase === 'Succeeded' ? true : undefined;
    },
    120_000,
  );
  const { stdout } = await kubectl(['logs', '-n', ns, name]);
  await kubectl(['delete', 'pod', '-n', ns, name, '--wait=false']);
  return stdout;
}

/** A hostPath PV + bound PVC for the swarm's results, writable by the coordinator (uid 65532). */
export async function resultsVolume(ns: string, name: string): Promise<string> {
  const dir = `/tmp/swarm-e2e-${ns}-${name}`;
  await hostPathPod(ns, `prep-${name}`, dir, 'chmod 0777 /d && : > /d/runs.log && chmod 0666 /d/runs.log');
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `${ns}-${name}`, labels: { 'e2e-namespace': ns } },
      spec: {
        capacity: { storage: '64Mi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: '',
        hostPath: { path: dir, type: 'Directory' },
      },
    }),
  });
  await kubectl(['apply', '-n', ns, '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name },
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: '', volumeName: `${ns}-${name}`, resources: { requests: { storage: '64Mi' } } },
    }),
  });
  return dir;
}

/** How many times each agent index ran (lines of runs.log, agents of pods before the agent container: upgrade.test.ts). */
export async function runCounts(ns: string, name: string, dir: string): Promise<Map<number, number>> {
  const log = await hostPathPod(ns, `read-${name}`, dir, 'cat /d/runs.log');
  const counts = new Map<number, number>();
  for (const line of log.split('\n')) {
    if (!/^\d+$/.test(line)) continue;
    counts.set(Number(line), (counts.get(Number(line)) ?? 0) + 1);
  }
  return counts;
}

/** Drops the namespace, its hostPath PV and, on the local node, the directory behind it. */
export async function dropResultsNamespace(ns: string): Promise<void> {
  await dropNamespace(ns);
  await kubectl(['delete', 'pv', '-l', `e2e-namespace=${ns}`, '--wait=false'], { allowFail: true });
  // The node is this machine: its hostPath dirs go too (kind's go with the cluster).
  if (MODE === 'local') {
    for (const d of readdirSync('/tmp').filter((d) => d.startsWith(`swarm-e2e-${ns}-`))) rmSync(`/tmp/${d}`, { recursive: true, force: true });
  }
}
