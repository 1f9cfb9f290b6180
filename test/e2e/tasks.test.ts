// Tasks in, on a real node: a Swarm's per-agent tasks (a ConfigMap key mounted
// into the V2 coordinator pod; an inline list on V1) reach each agent in real
// coordinator pods, each task exactly once, read back from the records the
// coordinator stored on its results volume.
import { describe, expect, it, jest } from '@jest/globals';
import { SAMPLES, apply, dropNamespace, freshNamespace, getSwarm, kubectl } from './kube.js';
import { dropResultsNamespace, hostPathPod, resultsVolume } from './results-volume.js';

jest.setTimeout(900_000);

/** Answers with its index, its own FILE variable, the objective and its task (stdin). */
const ECHO_AGENT = ['sh', '-c', 'printf "%s|%s|%s|" "$AGENT_INDEX" "${FILE-none}" "$CFN_OBJECTIVE"; cat'];

const swarm = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'swarm.cfn.dev/v1alpha1',
  kind: 'Swarm',
  metadata: { name },
  spec: { objective: 'OBJ', topology: 'flat', agent: { command: ECHO_AGENT, retries: 0 }, ...spec },
});

async function outputs(ns: string, claim: string, dir: string): Promise<string[]> {
  // One record per agent index at <namespace>/<name>/<uid>/<index>.json, one line each.
  const text = await hostPathPod(ns, `read-${claim}`, dir, 'cat /d/*/*/*/[0-9]*.json');
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { index: number; status: string; output: string })
    .sort((a, b) => a.index - b.index)
    .map((r) => `${r.status} ${r.output}`);
}

describe('tasks in, on a real node', () => {
  it('3 agents each get their own task (ConfigMap JSON lines on V2, inline on V1): each task answered once', async () => {
    const ns = await freshNamespace('tasks');
    try {
      const cmDir = await resultsVolume(ns, 'r-cm');
      const inlineDir = await resultsVolume(ns, 'r-inline');
      const lines = [
        { task: 'alpha\n$(touch /tmp/pwned) `id`', env: [{ name: 'FILE', value: 'a.sh' }] },
        { task: 'beta "quoted"; rm -rf /' },
        { task: 'gamma' },
      ];
      await apply(ns, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'work' },
        data: { 'tasks.jsonl': lines.map((l) => JSON.stringify(l)).join('\n') + '\n' },
      });
      await apply(
        ns,
        swarm('from-cm', {
          agents: 3,
          tasksFrom: { configMapKeyRef: { name: 'work', key: 'tasks.jsonl' } },
          coordination: { version: 'v2', fallbackTimeoutSeconds: 60 },
          results: { type: 'persistentVolumeClaim', claimName: 'r-cm' },
        }),
      );
      await apply(
        ns,
        swarm('inline', { tasks: ['one', 'two', 'three'], coordination: { version: 'v1' }, results: { type: 'persistentVolumeClaim', claimName: 'r-inline' } }),
      );
      for (const name of ['from-cm', 'inline']) {
        await kubectl(['wait', '-n', ns, '--for=condition=Complete', `swarm/${name}`, '--timeout=300s'], { timeoutMs: 310_000 });
        expect((await getSwarm(ns, name)).status).toMatchObject({ phase: 'Succeeded', deliveryRate: 100, agents: { total: 3, completed: 3, failed: 0 } });
      }
      expect((await getSwarm(ns, 'from-cm')).status?.activeVersion).toBe('v2');
      expect(await outputs(ns, 'r-cm', cmDir)).toEqual([
        'completed 0|a.sh|OBJ|alpha\n$(touch /tmp/pwned) `id`',
        'completed 1|none|OBJ|beta "quoted"; rm -rf /',
        'completed 2|none|OBJ|gamma',
      ]);
      expect(await outputs(ns, 'r-inline', inlineDir)).toEqual(['completed 0|none|OBJ|one', 'completed 1|none|OBJ|two', 'completed 2|none|OBJ|three']);
    } finally {
      await dropResultsNamespace(ns);
    }
  });

  it("config/samples/swarm-tasks.yaml: 9 agents each check one of the engine's own bash files in the image (bash -n), all completed", async () => {
    const ns = await freshNamespace('tasks-sample');
    try {
      await kubectl(['apply', '-n', ns, '-f', `${SAMPLES}/tasks-bash-files.yaml`, '-f', `${SAMPLES}/swarm-tasks.yaml`]);
      await kubectl(['wait', '-n', ns, '--for=condition=Complete', 'swarm/bash-checkers', '--timeout=300s'], { timeoutMs: 310_000 });
      expect((await getSwarm(ns, 'bash-checkers')).status).toMatchObject({
        phase: 'Succeeded',
        deliveryRate: 100,
        agents: { total: 9, completed: 9, failed: 0 },
      });
    } finally {
      await dropNamespace(ns);
    }
  });
});
