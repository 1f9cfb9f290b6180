// runCli in-process with captured streams, against the real engine on /dev/shm.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../../../operator/cli/main.js';
import { processesWithEnv } from '../../../operator/util/proc.js';
import { captureIo } from '../../helpers/capture.js';

jest.setTimeout(60_000);

let shm: string;

// V2 is the subject here (version choice and fallback: version-fallback.test.ts).
const io = (isTTY = false) => captureIo({ ...process.env, CFN_SHM_PATH: shm, LOG_LEVEL: 'silent', COORDINATION_VERSION: 'v2' }, isTTY);

beforeAll(async () => {
  shm = await mkdtemp('/dev/shm/cfn-test-cli-');
});

afterAll(async () => {
  await rm(shm, { recursive: true, force: true });
});

describe('cfn (runCli)', () => {
  it('prints help', async () => {
    const a = io();
    expect(await runCli(['--help'], a)).toBe(0);
    expect(a.out.text).toMatch(/^Usage: cfn <command>/);
    const b = io();
    expect(await runCli(['run', '--help'], b)).toBe(0);
    expect(b.out.text).toMatch(/--agents N/);
    const c = io();
    expect(await runCli([], c)).toBe(2);
    expect(c.out.text).toBe('');
  });

  it('bad flags: exit 2, one line on stderr, nothing on stdout', async () => {
    for (const argv of [
      ['run', '--agents', 'many'],
      ['run', '--agents', '3', '--nope'],
      ['frobnicate'],
      ['run', '--agents', '2', '--agent-command', '"unclosed'],
    ]) {
      const x = io();
      expect(await runCli(argv, x)).toBe(2);
      expect(x.out.text).toBe('');
      expect(x.err.text).toMatch(/^cfn: [^\n]+\n$/);
    }
  });

  it("applies config/performance-limits.json: past one coordinator's maximum is a usage error, past its recommended size a warning", async () => {
    const refused = io();
    expect(await runCli(['run', '--agents', '10001', '--agent-command', 'true'], refused)).toBe(2);
    expect(refused.err.text).toBe(
      "cfn: 10001 agents exceed one coordinator's maximum of 10000: split the swarm into shards (--shard I/N) (config/performance-limits.json)\n",
    );
    expect(refused.out.text).toBe('');
    const warned = io();
    expect(await runCli(['run', '--agents', '301', '--agent-command', 'true', '--json'], warned)).toBe(0);
    expect(warned.err.text).toBe('cfn: warning: 301 agents on one coordinator is more than the recommended 300: consider shards (--shard I/N)\n');
    expect(JSON.parse(warned.out.text)).toMatchObject({ status: 'completed', indexRange: { start: 0, end: 301 }, agents: { total: 301, completed: 301 } });
    // A shard of a larger swarm is judged by its own size.
    const shard = io();
    expect(await runCli(['run', '--agents', '602', '--shard', '1/2', '--agent-command', 'true', '--json'], shard)).toBe(0);
    expect(shard.err.text).toBe('cfn: warning: 301 agents on one coordinator is more than the recommended 300: consider shards (--shard I/N)\n');
  });

  it('takes its defaults from the shipped config/v2-config.json', async () => {
    const shipped = JSON.parse(readFileSync(new URL('../../../config/v2-config.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    const help = io();
    expect(await runCli(['run', '--help'], help)).toBe(0);
    for (const [flag, key] of [
      ['--timeout S', 'timeoutSeconds'],
      ['--agent-timeout S', 'agentTimeoutSeconds'],
      ['--retries R', 'retries'],
      ['--max-output BYTES', 'maxOutputBytes'],
    ] as const) {
      expect(help.out.text).toMatch(new RegExp(`${flag.replace(/[-]/g, '\\-')} .*\\(default ${String(shipped[key])}\\)`));
    }
  });

  it('--json prints exactly one JSON object with the status fields, version and index range', async () => {
    const x = io();
    const code = await runCli(['run', '--agents', '20', '--json', '--swarm-id', `cli-json-${process.pid}`], x);
    expect(x.err.text).toBe('');
    expect(code).toBe(0);
    const lines = x.out.text.trim().split('\n');
    expect(lines).toHaveLength(1);
    const parsed = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(Object.keys(parsed).sort()).toEqual(
      ['agents', 'coordinationTime', 'deliveryRate', 'indexRange', 'objectiveId', 'status', 'throughputAgentsPerSec', 'version', 'versionReason'].sort(),
    );
    expect(parsed).toMatchObject({
      objectiveId: `cli-json-${process.pid}`,
      status: 'completed',
      agents: { total: 20, completed: 20, failed: 0 },
      deliveryRate: 100,
      version: 'v2',
      versionReason: 'COORDINATION_VERSION=v2',
      indexRange: { start: 0, end: 20 },
    });
    expect(typeof parsed.coordinationTime).toBe('number');
    expect(typeof parsed.throughputAgentsPerSec).toBe('number');
    expect(await readdir(shm)).not.toContain(`cli-json-${process.pid}`);
  });

  it('below --min-delivery (deadline with hanging agents): non-zero; accepted when the threshold allows', async () => {
    const cmd = ['--agent-command', `sh -c 'if [ "$AGENT_INDEX" -lt 2 ]; then echo ok; else exec sleep 30; fi'`];
    const strict = io();
    const code = await runCli(['run', '--agents', '4', '--timeout', '1.5', '--json', ...cmd], strict);
    expect(code).toBe(1);
    const result = JSON.parse(strict.out.text) as { status: string; deliveryRate: number };
    expect(result.status).toBe('timeout');
    expect(result.deliveryRate).toBe(50);
    expect(strict.err.text).toBe('cfn: deadline passed: 2/4 agents completed, 0 failed: delivery 50% < --min-delivery 100%\n');

    const lenient = io();
    expect(await runCli(['run', '--agents', '4', '--timeout', '1.5', '--min-delivery', '50', '--json', ...cmd], lenient)).toBe(0);
  });

  it('unavailable coordinator (--no-fallback): exit 3 and, with --json, still one JSON object with the reason', async () => {
    const x = io();
    const code = await runCli(['run', '--agents', '2', '--json', '--no-fallback', '--shm-path', '/proc/cfn-cannot-exist'], x);
    expect(code).toBe(3);
    const parsed = JSON.parse(x.out.text) as { status: string; error: string; version: string };
    expect(parsed.status).toBe('failed');
    expect(parsed.version).toBe('v2');
    expect(parsed.error).toContain('/proc/cfn-cannot-exist');
    expect(x.err.text.trim().split('\n')).toHaveLength(1);
  });

  it('SIGINT stops the swarm: exit 130, no agent process and no root left', async () => {
    const x = io();
    x.signals = true;
    const id = `cli-int-${process.pid}`;
    const running = runCli(['run', '--agents', '5', '--json', '--swarm-id', id, '--', 'sleep', '60'], x);
    for (let i = 0; i < 200 && (await processesWithEnv('SWARM_ID', id)).length < 5; i += 1) await new Promise((r) => setTimeout(r, 50));
    expect((await processesWithEnv('SWARM_ID', id)).length).toBeGreaterThanOrEqual(5);
    process.emit('SIGINT');
    expect(await running).toBe(130);
    expect(JSON.parse(x.out.text)).toMatchObject({ objectiveId: id, status: 'stopped' });
    expect(await processesWithEnv('SWARM_ID', id)).toEqual([]);
    expect(await readdir(shm)).not.toContain(id);
  });

  it('all agents failing: delivery 0%, status failed, exit 1 (delivery is completed work)', async () => {
    const x = io();
    expect(await runCli(['run', '--agents', '3', '--retries', '0', '--agent-command', `sh -c 'echo nope >&2; exit 7'`], x)).toBe(1);
    expect(x.err.text).toBe('cfn: 0/3 agents completed, 3 failed: delivery 0% < --min-delivery 100% (first agent error: nope)\n');
    expect(x.out.text).toMatch(/^agents\s+3 total, 0 completed, 3 failed$/m);
    expect(x.out.text).toMatch(/^status\s+failed$/m);
    expect(x.out.text).toMatch(/^delivery\s+0\.0%$/m);

    const json = io();
    expect(await runCli(['run', '--agents', '10', '--agent-command', 'false', '--retries', '0', '--json'], json)).toBe(1);
    expect(JSON.parse(json.out.text)).toMatchObject({
      status: 'failed',
      agents: { total: 10, completed: 0, failed: 10 },
      deliveryRate: 0,
      throughputAgentsPerSec: 0,
    });
  });

  it('10% of agents failing: exactly 90% delivery; --min-delivery 90 accepts it (exit 0, with a note), the default refuses it', async () => {
    const cmd = ['--agents', '20', '--retries', '0', '--json', '--agent-command', `sh -c '[ $((AGENT_INDEX % 10)) -ne 0 ] || { echo bad >&2; exit 4; }'`];
    const strict = io();
    expect(await runCli(['run', ...cmd], strict)).toBe(1);
    expect(JSON.parse(strict.out.text)).toMatchObject({ status: 'failed', agents: { total: 20, completed: 18, failed: 2 }, deliveryRate: 90 });
    expect(strict.err.text).toBe('cfn: 18/20 agents completed, 2 failed: delivery 90% < --min-delivery 100% (first agent error: bad)\n');
    const lenient = io();
    expect(await runCli(['run', ...cmd, '--min-delivery', '90'], lenient)).toBe(0);
    expect(JSON.parse(lenient.out.text)).toMatchObject({ status: 'completed', deliveryRate: 90 });
    expect(lenient.err.text).toBe('cfn: note: 2 of 20 agents failed (agent 0: exit 4, bad)\n');
  });

  it('--no-retry-exit-codes: that exit code ends the agent after one attempt; others are retried (V2 and V1)', async () => {
    for (const version of ['v2', 'v1']) {
      const x = io();
      const memory = join(shm, `no-retry-${process.pid}.sqlite`);
      const cmd = `sh -c 'exit $(( AGENT_INDEX == 0 ? 3 : (CFN_ATTEMPT < 2 ? 5 : 0) ))'`;
      const args = [
        'run',
        '--agents',
        '3',
        '--retries',
        '2',
        '--no-retry-exit-codes',
        '3',
        '--min-delivery',
        '60',
        '--version',
        version,
        '--memory-path',
        memory,
        '--json',
        '--agent-command',
        cmd,
      ];
      expect(await runCli(args, x)).toBe(0);
      expect(JSON.parse(x.out.text)).toMatchObject({ status: 'completed', version, agents: { total: 3, completed: 2, failed: 1 }, deliveryRate: 66.6 });
      expect(x.err.text).toBe('cfn: note: 1 of 3 agents failed (agent 0: exit 3, exit code 3)\n');
    }
  });

  it('on a TTY draws the progress bar on stderr and a summary table on stdout', async () => {
    const x = io(true);
    expect(await runCli(['run', '--agents', '30', '--agent-command', 'true'], x)).toBe(0);
    expect(x.err.text).toContain('[##############################] 100% 30/30 done, 30 ok, 0 failed');
    expect(x.out.text).toMatch(/^swarm\s+run-/m);
    expect(x.out.text).toMatch(/^delivery\s+100\.0%$/m);
    expect(x.out.text).toMatch(/^coordinator\s+v2$/m);
    expect(x.out.text).toMatch(/^chosen by\s+COORDINATION_VERSION=v2$/m);
  });
});
