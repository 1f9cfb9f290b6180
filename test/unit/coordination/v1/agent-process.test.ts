import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAgentAttempt } from '../../../../operator/coordination/v1/agent-process.js';
import type { AgentAttemptInput } from '../../../../operator/coordination/v1/agent-process.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures');

function input(argv: string[], extra: Partial<AgentAttemptInput> = {}): AgentAttemptInput {
  return {
    argv,
    agentIndex: 3,
    objectiveId: 'obj-1',
    task: 'the task',
    objective: 'the objective',
    attempt: 1,
    agentsTotal: 5,
    maxOutputBytes: 65536,
    signal: new AbortController().signal,
    ...extra,
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('runAgentAttempt', () => {
  it("a task beyond exec's limit for one string reaches stdin whole, CFN_TASK unset (as in V2); per-task env reaches the agent", async () => {
    const big = 'x'.repeat(140_000);
    const r = await runAgentAttempt(
      input(['sh', '-c', 'printf "%s|%s|" "${CFN_TASK-unset}" "$FILE"; wc -c'], { task: big, env: { FILE: 'a.sh' }, maxOutputBytes: 1000 }),
    );
    expect(r).toMatchObject({ ok: true, exitCode: 0 });
    expect(r.output.trim()).toBe('unset|a.sh|140000');
  });

  it('passes the agent contract environment and the task on stdin', async () => {
    const script =
      'printf "%s|%s|%s|%s|%s|%s|%s|%s|" "$AGENT_ID" "$AGENT_INDEX" "$OBJECTIVE_ID" "$SWARM_ID" "$CFN_TASK" "$CFN_OBJECTIVE" "$CFN_ATTEMPT" "$CFN_AGENTS_TOTAL"; cat';
    const r = await runAgentAttempt(input(['sh', '-c', script], { attempt: 2 }));
    expect(r).toMatchObject({ ok: true, exitCode: 0, error: null, outputTruncated: false });
    expect(r.output).toBe('agent-3|3|obj-1|obj-1|the task|the objective|2|5|the task');
    expect(r.outputBytes).toBe(Buffer.byteLength(r.output));
  });

  it('hands task text with shell syntax to the agent unevaluated', async () => {
    const task = '$(touch /tmp/should-not-exist) `id` "quoted" \'single\'\nline2';
    const r = await runAgentAttempt(input(['cat'], { task }));
    expect(r.output).toBe(task);
  });

  it('bounds the output and reports the full size', async () => {
    const r = await runAgentAttempt(input(['sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" a'], { maxOutputBytes: 1000 }));
    expect(r.ok).toBe(true);
    expect(r.output).toBe('a'.repeat(1000));
    expect(r.outputBytes).toBe(100000);
    expect(r.outputTruncated).toBe(true);
  });

  it('turns invalid UTF-8 into U+FFFD', async () => {
    const r = await runAgentAttempt(input(['printf', 'ok\\377\\376end']));
    expect(r.output).toBe('ok\uFFFD\uFFFDend');
    expect(r.outputBytes).toBe(7);
  });

  it('reports the exit code and the last stderr line of a failing agent', async () => {
    const r = await runAgentAttempt(input(['sh', '-c', 'echo first >&2; echo "last line" >&2; echo out; exit 3']));
    expect(r).toMatchObject({ ok: false, exitCode: 3, error: 'last line', output: 'out\n' });
  });

  it('a program that is not there is exit code 127 with the reason, as in V2', async () => {
    const r = await runAgentAttempt(input(['/nonexistent/agent-binary']));
    expect(r).toMatchObject({ ok: false, exitCode: 127, error: 'launcher: /nonexistent/agent-binary: No such file or directory' });
    expect(await runAgentAttempt(input(['no-such-agent-program']))).toMatchObject({
      ok: false,
      exitCode: 127,
      error: 'launcher: no-such-agent-program: command not found',
    });
  });

  it('stops an agent that ignores TERM with KILL after the grace period; a stopped attempt has no answer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfn-v1-term-'));
    try {
      const pidFile = join(dir, 'pid');
      const controller = new AbortController();
      const started = Date.now();
      const pending = runAgentAttempt(
        input(['sh', join(fixtures, 'term-ignoring-agent.sh')], { signal: controller.signal, killGraceMs: 300, env: { PID_FILE: pidFile } }),
      );
      await waitFor(() => readFileSafe(pidFile) !== '');
      controller.abort(new Error('timed out after 0.2s'));
      const r = await pending;
      expect(r).toMatchObject({ ok: false, aborted: true, exitCode: null, error: 'timed out after 0.2s' });
      expect(Date.now() - started).toBeLessThan(5000);
      expect(alive(Number(readFileSafe(pidFile)))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
