// Results out, on a real node: a Swarm with the default results type gets a
// claim the operator creates, which the node's local-path-provisioner
// provisions; `cfn results` reads every agent's record back through a reader
// pod after the coordinator pods are gone; deleting the Swarm removes its
// claim and the volume (retain keeps the claim); a claim that cannot bind
// says why in the Swarm's status.
import { describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
  MODE,
  REPO,
  SAMPLES,
  apply,
  dropNamespace,
  freshNamespace,
  getSwarm,
  kubectl,
  kubectlJson,
  operatorImage,
  swarmPods,
  tempDir,
  waitFor,
} from './kube.js';

jest.setTimeout(900_000);

/** Answers "out <index>"; agent 2 fails with exit 3 and a message on stderr. */
const AGENT = ['sh', '-c', 'echo "out $AGENT_INDEX"; if [ "$AGENT_INDEX" = 2 ]; then echo "boom $AGENT_INDEX" >&2; exit 3; fi'];

const swarm = (name: string, results: Record<string, unknown> = {}, agents = 4) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: {
    objective: 'results out',
    agents,
    topology: 'flat',
    coordination: { version: 'v2', fallbackTimeoutSeconds: 60 },
    agent: { command: AGENT, retries: 0, timeoutSeconds: 60 },
    successPolicy: { minDeliveryRate: 50 },
    results,
  },
});

const claimSchema = z.object({
  metadata: z.object({ name: z.string(), ownerReferences: z.array(z.object({ kind: z.string(), uid: z.string() })).optional() }),
  spec: z.object({ storageClassName: z.string().optional(), volumeName: z.string().optional(), accessModes: z.array(z.string()) }),
  status: z.object({ phase: z.string().optional() }).optional(),
});
const pvSchema = z.object({ spec: z.object({ hostPath: z.object({ path: z.string() }).optional(), local: z.object({ path: z.string() }).optional() }) });

const getClaim = async (ns: string, name: string) => {
  const r = await kubectl(['get', 'pvc', '-n', ns, name, '-o', 'json'], { allowFail: true });
  return r.code === 0 ? claimSchema.parse(JSON.parse(r.stdout)) : undefined;
};
const pvExists = async (name: string) => (await kubectl(['get', 'pv', name], { allowFail: true })).code === 0;

/** Runs bin/cfn.js (the CLI of this work tree) against the e2e cluster. */
function cfn(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(REPO, 'bin/cfn.js'), ...args],
      { env: process.env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

const finished = async (ns: string, name: string) => {
  const s = await getSwarm(ns, name);
  return s.status?.phase === 'Succeeded' || s.status?.phase === 'Failed' ? s : undefined;
};

describe('results out: a claim per Swarm, read back with cfn results', () => {
  it('default results: a provisioned claim owned by the Swarm; cfn results after the pods are gone; deletion removes claim, volume and its directory', async () => {
    const ns = await freshNamespace('results');
    try {
      // Coordinator and reader pods alike must pass the restricted standard.
      await kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
      await apply(ns, swarm('work'));
      const done = await waitFor('swarm work finished', () => finished(ns, 'work'), 300_000);
      expect(done.status).toMatchObject({ phase: 'Succeeded', agents: { total: 4, completed: 3, failed: 1 } });

      const claim = await getClaim(ns, 'work-results');
      expect(claim).toMatchObject({ spec: { storageClassName: 'local-path', accessModes: ['ReadWriteOnce'] }, status: { phase: 'Bound' } });
      expect(claim?.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Swarm', uid: done.metadata.uid })]);
      const pvName = claim!.spec.volumeName!;
      const pv = await kubectlJson(pvSchema, ['get', 'pv', pvName]);
      const volumeDir = pv.spec.hostPath?.path ?? pv.spec.local?.path ?? '';
      if (MODE === 'local') {
        expect(volumeDir.startsWith(path.join(process.env.E2E_STATE_DIR ?? '', 'node/local-path/volumes/'))).toBe(true);
        // Writable by the coordinator's uid 65532: the provisioner's setup makes it 0777.
        expect((statSync(volumeDir).mode & 0o777).toString(8)).toBe('777');
        // The coordinator (uid 65532) wrote one record per agent index.
        expect(
          readdirSync(path.join(volumeDir, ns, 'work', done.metadata.uid))
            .filter((f) => f.endsWith('.json'))
            .sort(),
        ).toEqual(['0.json', '1.json', '2.json', '3.json']);
      }

      // Every pod of the swarm gone first.
      await kubectl(['delete', 'pods', '-n', ns, '-l', 'swarm.cfn.dev/swarm=work', '--wait=true', '--timeout=120s']);
      expect(await swarmPods(ns, 'work')).toEqual([]);
      const image = await operatorImage();

      const all = await cfn(['results', 'work', '-n', ns, '--image', image]);
      expect(all.code).toBe(0);
      const records = all.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { index: number; status: string; exitCode: number | null; output: string; error: string | null });
      expect(records.map((r) => [r.index, r.status, r.exitCode, r.output])).toEqual([
        [0, 'completed', 0, 'out 0\n'],
        [1, 'completed', 0, 'out 1\n'],
        [2, 'failed', 3, 'out 2\n'],
        [3, 'completed', 0, 'out 3\n'],
      ]);
      expect(records[2]?.error).toContain('boom 2');
      expect(all.stderr).toContain(`swarm ${ns}/work (pvc://work-results/${ns}/work/${done.metadata.uid}/): 4 results (3 completed, 1 failed) of 4 agents`);

      const failed = await cfn(['results', 'work', '-n', ns, '--image', image, '--failed']);
      expect(
        failed.stdout
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { index: number }).index),
      ).toEqual([2]);

      const table = await cfn(['results', 'work', '-n', ns, '--image', image, '--format', 'table']);
      const rows = table.stdout.trim().split('\n');
      expect(rows[0]).toMatch(/^INDEX\s+STATUS\s+EXIT\s+ATTEMPTS\s+DURATION\s+OUTPUT \/ ERROR$/);
      expect(rows.slice(1).map((r) => r.split(/\s+/).slice(0, 4))).toEqual([
        ['0', 'completed', '0', '1'],
        ['1', 'completed', '0', '1'],
        ['2', 'failed', '3', '1'],
        ['3', 'completed', '0', '1'],
      ]);
      expect(rows[3]).toContain('boom 2');

      const out = tempDir('cfn-results-');
      expect((await cfn(['results', 'work', '-n', ns, '--image', image, '--out', out])).code).toBe(0);
      expect(readFileSync(path.join(out, '3.out'), 'utf8')).toBe('out 3\n');
      expect(readFileSync(path.join(out, 'results.jsonl'), 'utf8').trim().split('\n')).toHaveLength(4);

      const logs = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [path.join(REPO, 'bin/kubectl-swarm.js'), 'logs', 'work', '-n', ns, '--agent', '2', '--image', image],
          { env: process.env, timeout: 300_000 },
          (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
        );
      });
      expect(logs).toMatchObject({ code: 1, stdout: 'out 2\n' });
      expect(logs.stderr).toContain('agent 2 failed (exit 3, 1 attempt)');
      expect(logs.stderr).toContain('boom 2');

      // No reader pod is left behind.
      expect((await kubectl(['get', 'pods', '-n', ns, '-l', 'swarm.cfn.dev/results-of=work', '-o', 'name'])).stdout.trim()).toBe('');

      await kubectl(['delete', 'swarm', '-n', ns, 'work', '--wait=true', '--timeout=120s']);
      await waitFor('claim work-results gone', async () => ((await getClaim(ns, 'work-results')) ? undefined : true), 120_000);
      await waitFor(`volume ${pvName} gone`, async () => ((await pvExists(pvName)) ? undefined : true), 180_000);
      if (MODE === 'local') expect(existsSync(volumeDir)).toBe(false);
    } finally {
      await dropNamespace(ns);
    }
  });

  it('retain (config/samples/swarm-results-retain.yaml): the claim outlives its Swarm; an emptyDir swarm says its results went with the pod; a claim that cannot bind says why', async () => {
    const ns = await freshNamespace('results-keep');
    try {
      // The sample: 3 agents check a bash file of the image each; its claim is retained.
      await kubectl(['apply', '-n', ns, '-f', `${SAMPLES}/swarm-results-retain.yaml`]);
      const done = await waitFor('swarm shellcheckers finished', () => finished(ns, 'shellcheckers'), 300_000);
      expect(done.status).toMatchObject({ phase: 'Succeeded', agents: { total: 3, completed: 3, failed: 0 } });
      const claim = await getClaim(ns, 'shellcheckers-results');
      expect(claim?.metadata.ownerReferences).toBeUndefined();
      const read = await cfn(['results', 'shellcheckers', '-n', ns, '--image', await operatorImage()]);
      expect(
        read.stdout
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { output: string }).output),
      ).toEqual(['bash/coordinator-cli.sh: syntax ok\n', 'bash/lib/bus.sh: syntax ok\n', 'bash/lib/common.sh: syntax ok\n']);
      await kubectl(['delete', 'swarm', '-n', ns, 'shellcheckers', '--wait=true', '--timeout=120s']);
      expect(await getClaim(ns, 'shellcheckers-results')).toMatchObject({ status: { phase: 'Bound' } });
      const pvName = claim!.spec.volumeName!;
      await kubectl(['delete', 'pvc', '-n', ns, 'shellcheckers-results', '--wait=true', '--timeout=120s']);
      await waitFor(`volume ${pvName} gone`, async () => ((await pvExists(pvName)) ? undefined : true), 180_000);

      await apply(ns, swarm('gone', { type: 'emptyDir' }, 1));
      const gone = await cfn(['results', 'gone', '-n', ns]);
      expect(gone.code).toBe(1);
      expect(gone.stderr).toContain(`swarm ${ns}/gone: results were in an emptyDir and went with the pod`);

      await apply(ns, swarm('nobind', { storageClassName: 'no-such-class' }, 1));
      const blocked = await waitFor(
        'CoordinatorReady names the claim',
        async () =>
          (await getSwarm(ns, 'nobind')).status?.conditions?.find((c) => c.type === 'CoordinatorReady' && c.message?.includes('results claim nobind-results')),
        120_000,
      );
      expect(blocked).toMatchObject({ status: 'False', reason: 'Unschedulable' });
      expect(blocked.message).toMatch(/results claim nobind-results is Pending: \w+: .*no-such-class/);
      expect((await getSwarm(ns, 'nobind')).status?.phase).toBe('Pending');
    } finally {
      await dropNamespace(ns);
    }
  });
});
