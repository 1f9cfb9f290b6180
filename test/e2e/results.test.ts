// Results out, on a real node: the coordinator stores each agent's result on
// the swarm's volume as it arrives (one file per index); its pod deleted
// mid-run, the replacement stores the rest. The volume then holds exactly one
// record per agent with the right output, and status.results counts them.
import { describe, expect, it, jest } from '@jest/globals';
import { z } from 'zod';
import { storedResult } from '../../operator/results/stored-result.js';
import { apply, freshNamespace, getSwarm, indexSet, kubectl, kubectlJson, waitFor } from './kube.js';
import { dropResultsNamespace, hostPathPod, recordingSwarm, resultsStatusSchema, resultsVolume } from './results-volume.js';

const AGENTS = 40;
/** Works a while and answers; agents cannot write the results volume (only the coordinator can). */
const AGENT = ['sh', '-c', 'sleep 1; echo "done $AGENT_INDEX"'];

jest.setTimeout(900_000);

const resultsStatus = z.object({
  status: z.object({
    results: resultsStatusSchema,
    conditions: z.array(z.object({ type: z.string(), status: z.string(), reason: z.string(), message: z.string() })).optional(),
  }),
});

/** Every file of the swarm's results directory on the volume: name and content (records are one line each). */
async function volumeFiles(ns: string, claim: string, dir: string, path: string): Promise<Array<{ name: string; text: string }>> {
  const script = `cd "/d/${path}" && for f in * .[!.]*; do [ -e "$f" ] || continue; printf '=== %s\\n' "$f"; cat "$f"; done`;
  const out = await hostPathPod(ns, `read-${claim}`, dir, script);
  return out
    .split(/^=== /m)
    .filter(Boolean)
    .map((chunk) => {
      const nl = chunk.indexOf('\n');
      return { name: chunk.slice(0, nl), text: chunk.slice(nl + 1) };
    });
}

describe('results out, on a real node', () => {
  it.each([
    ['deleted (SIGTERM: it stops, stores what it has, publishes)', ['--wait=false']],
    ['force-deleted (killed at once, like a lost node)', ['--grace-period=0', '--force']],
  ])('coordinator pod %s mid-run: the volume holds exactly one record per agent, outputs intact; status.results counts them', async (_how, deleteFlags) => {
    const ns = await freshNamespace('results');
    try {
      const dir = await resultsVolume(ns, 'results');
      await apply(ns, recordingSwarm('keep', 'e2e results', AGENTS, 'results', AGENT));
      const before = await waitFor(
        'some agents delivered',
        async () => {
          const s = await getSwarm(ns, 'keep');
          return (s.status?.agents?.completed ?? 0) >= 8 && s.status?.coordinatorPod ? s : undefined;
        },
        180_000,
        200,
      );
      const firstPod = before.status?.coordinatorPod ?? '';
      const delivered = indexSet(before.status?.completedAgents);
      expect(delivered.size).toBeLessThan(AGENTS);
      // A replacement runs the rest.
      await kubectl(['delete', 'pod', '-n', ns, firstPod, ...deleteFlags]);
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/keep', '--timeout=300s'], { timeoutMs: 310_000 });
      const after = await getSwarm(ns, 'keep');
      expect(after.status).toMatchObject({ phase: 'Succeeded', deliveryRate: 100, agents: { total: AGENTS, completed: AGENTS, failed: 0 } });
      expect(after.status?.coordinatorAttempts).toBeGreaterThanOrEqual(2);
      const uid = after.metadata.uid;

      const st = (await kubectlJson(resultsStatus, ['get', 'swarm', '-n', ns, 'keep'])).status;
      expect(st.results).toMatchObject({ type: 'persistentVolumeClaim', location: `pvc://results/${ns}/keep/${uid}/`, stored: AGENTS, pending: 0 });
      expect(st.results?.lastError).toBeUndefined();
      expect(st.conditions?.find((c) => c.type === 'ResultsStored')).toMatchObject({ status: 'True', reason: 'Stored' });

      const files = await volumeFiles(ns, 'results', dir, `${ns}/keep/${uid}`);
      const records = files.filter((f) => !(f.name.startsWith('.') && f.name.endsWith('.tmp')));
      expect(records.map((f) => f.name).sort()).toEqual(Array.from({ length: AGENTS }, (_, i) => `${i}.json`).sort());
      let bytes = 0;
      for (const f of records) {
        const r = storedResult.parse(JSON.parse(f.text));
        bytes += Buffer.byteLength(f.text);
        expect(`${r.index}.json`).toBe(f.name);
        expect(r).toMatchObject({ status: 'completed', exitCode: 0, output: `done ${r.index}\n`, version: 'v2' });
        // Published as delivered by the first pod: its record, never rewritten by the replacement.
        if (delivered.has(r.index)) expect(r.pod).toBe(firstPod);
      }
      expect(st.results?.bytes).toBe(bytes);
      expect(new Set(records.map((f) => JSON.parse(f.text).pod as string)).size).toBeGreaterThanOrEqual(2);
    } finally {
      await dropResultsNamespace(ns);
    }
  });
});
