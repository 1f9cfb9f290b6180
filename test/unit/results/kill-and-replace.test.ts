// Results survive the loss of their coordinator: a V2 and a V1 coordinator
// process storing through a ResultWriter into a directory is SIGKILLed (with
// its engine and agents) mid-run; a replacement resumes past the indexes the
// first had reported stored (what it publishes in status). In the end the
// directory holds exactly one record per agent, outputs intact, and every
// record the first stored and reported is still its.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectorySource } from '../../../operator/results/directory-sink.js';
import { indexOfKey } from '../../../operator/results/stored-result.js';
import { isTempFile } from '../../../operator/util/atomic-write.js';
import { processesWithEnv, signalGroup } from '../../../operator/util/proc.js';
import type { ObjectiveSpec } from '../../../operator/coordination/types.js';

jest.setTimeout(120_000);

const here = fileURLToPath(new URL('.', import.meta.url));
const nodeArgs = [
  '--experimental-transform-types',
  '--no-warnings',
  '--import',
  join(here, '../coordination/v1/fixtures/ts-loader.mjs'),
  join(here, 'fixtures/store-run.ts'),
];
const AGENTS = 16;
/**
 * Agents 4, 9, 14 fail (exit 3); agents from 8 on wait for the gate, which
 * opens only for the replacement, so the kill always lands mid-run.
 */
const agent = (gate: string) => [
  'sh',
  '-c',
  `i=$AGENT_INDEX; [ "$i" -lt 8 ] || while [ ! -e '${gate}' ]; do sleep 0.05; done; if [ $((i % 5)) -eq 4 ]; then echo "fail $i" >&2; exit 3; fi; printf "out %s\\n" "$i"`,
];

interface Run {
  stored: Map<number, string>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  pid: number;
}

function startRun(version: 'v1' | 'v2', root: string, pod: string, work: string, spec: ObjectiveSpec, tag: string): Run {
  mkdirSync(work, { recursive: true });
  const specFile = join(work, 'spec.json');
  writeFileSync(specFile, JSON.stringify(spec));
  // Its own process group: the kill takes the coordinator, its engine and its agents at once, like a lost node.
  const child = spawn(process.execPath, [...nodeArgs, version, root, pod, work, specFile], {
    env: { ...process.env, RESULTS_TEST_RUN: tag },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const stored = new Map<number, string>();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const m of stdout.matchAll(/^stored (\d+) (completed|failed)$/gm)) stored.set(Number(m[1]), m[2]!);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { stored, done, pid: child.pid! };
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('results across a lost coordinator', () => {
  let dir: string;
  const tag = `results-${process.pid}`;
  beforeEach(() => {
    dir = mkdtempSync('/dev/shm/cfn-test-kill-');
  });
  afterEach(async () => {
    for (const pid of await processesWithEnv('RESULTS_TEST_RUN', tag)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['v2', 'v1'] as const)('%s: killed mid-run, replaced: one record per agent, no index twice, outputs intact', async (version) => {
    const root = join(dir, 'volume');
    const spec: ObjectiveSpec = {
      id: `kill-${version}`,
      description: 'results survive',
      agents: AGENTS,
      agentCommand: agent(join(dir, 'gate')),
      agentTimeoutSeconds: 30,
      retries: 0,
      concurrency: 4,
      timeoutSeconds: 120,
      maxOutputBytes: 4096,
    };
    const first = startRun(version, root, 'pod-1', join(dir, 'pod-1'), spec, tag);
    await until('6 results stored by the first coordinator', () => first.stored.size >= 6);
    // Let more of the first's writes get under way before the kill.
    await new Promise((r) => setTimeout(r, 50));
    signalGroup(first.pid, 'SIGKILL');
    const ended = await first.done;
    expect(ended.code).toBeNull();
    expect(ended.stdout).not.toMatch(/^done/m);
    const published = new Map(first.stored);
    expect(published.size).toBeLessThan(AGENTS);

    // Everything the first reported stored is on the volume, whole.
    const source = new DirectorySource(root, { namespace: 'ns', name: 'sw', uid: spec.id });
    const afterKill = await source.read();
    expect(afterKill.unreadable).toEqual([]);
    for (const i of published.keys()) expect(afterKill.results.find((r) => r.index === i)).toMatchObject({ pod: 'pod-1' });

    // The replacement resumes past what the first published: completed and finally failed.
    const completedIndexes = [...published].filter(([, s]) => s === 'completed').map(([i]) => i);
    const failedIndexes = [...published].filter(([, s]) => s === 'failed').map(([i]) => i);
    writeFileSync(join(dir, 'gate'), '');
    const second = startRun(version, root, 'pod-2', join(dir, 'pod-2'), { ...spec, completedIndexes, failedIndexes }, tag);
    const finished = await second.done;
    expect(finished.stderr).toBe('');
    expect(finished.code).toBe(0);
    // It stored the rest; its stats count the first's records too, each index once.
    expect([...second.stored.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: AGENTS }, (_, i) => i).filter((i) => !published.has(i)));
    expect(JSON.parse(/^done (.*)$/m.exec(finished.stdout)![1]!)).toMatchObject({ stored: AGENTS, pending: 0 });

    const names = readdirSync(join(root, 'ns/sw', spec.id));
    expect(names.every((n) => indexOfKey(n) !== undefined || isTempFile(n))).toBe(true);
    const { results, unreadable } = await source.read();
    expect(unreadable).toEqual([]);
    expect(results.map((r) => r.index)).toEqual(Array.from({ length: AGENTS }, (_, i) => i));
    for (const r of results) {
      if (r.index % 5 === 4) expect(r).toMatchObject({ status: 'failed', exitCode: 3, error: expect.stringContaining(`fail ${r.index}`), version });
      else expect(r).toMatchObject({ status: 'completed', exitCode: 0, output: `out ${r.index}\n`, version });
      // What the first published stays the first's; the rest is the replacement's.
      expect(r.pod).toBe(published.has(r.index) ? 'pod-1' : 'pod-2');
    }
  });
});
