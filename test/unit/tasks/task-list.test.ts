import { describe, expect, it } from '@jest/globals';
import {
  checkInlineTasks,
  checkTaskCount,
  detectTaskFormat,
  parseTaskList,
  TASK_MAX_BYTES,
  TaskListError,
  taskEnvNameProblem,
  TASKS_INLINE_MAX_CHARS,
} from '../../../operator/tasks/task-list.js';

const err = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TaskListError);
    return (e as Error).message;
  }
  throw new Error('expected a TaskListError');
};

describe('parseTaskList', () => {
  it('plain lines: one task per line, CRLF and blank lines dropped, text kept as data', () => {
    expect(parseTaskList('fix a.sh\r\n\n  \nrun $(id) `x` "q"\n', 'lines')).toEqual([{ task: 'fix a.sh' }, { task: 'run $(id) `x` "q"' }]);
  });

  it('JSON lines: newlines inside a task, per-task env', () => {
    const text = '{"task":"line1\\nline2","env":[{"name":"FILE","value":"a.sh"},{"name":"_X1","value":"$(id)"}]}\n{"task":"b"}\n';
    expect(parseTaskList(text, 'jsonl')).toEqual([{ task: 'line1\nline2', env: { FILE: 'a.sh', _X1: '$(id)' } }, { task: 'b' }]);
  });

  it('detects the format from the first non-blank line, and an explicit format wins', () => {
    expect(detectTaskFormat('\n  {"task":"a"}\n')).toBe('jsonl');
    expect(detectTaskFormat('fix {a}\n')).toBe('lines');
    expect(parseTaskList('{"task":"a"}\n')).toEqual([{ task: 'a' }]);
    expect(parseTaskList('{"task":"a"}\n', 'lines')).toEqual([{ task: '{"task":"a"}' }]);
  });

  it('names the line of a malformed JSON line, an unknown field or a missing task', () => {
    expect(err(() => parseTaskList('{"task":"a"}\n{oops\n', 'jsonl'))).toMatch(/^line 2: not a JSON object/);
    expect(err(() => parseTaskList('{a} is a plain task\n'))).toMatch(/^line 1: not a JSON object .*set the format to lines for plain text\)$/);
    expect(err(() => parseTaskList('{"task":"a","extra":1}\n', 'jsonl'))).toMatch(/^line 1: /);
    expect(err(() => parseTaskList('{"env":[]}\n', 'jsonl'))).toMatch(/^line 1: task: /);
  });

  it('rejects invalid and engine env names', () => {
    for (const name of ['1X', 'A-B', 'A B', '', 'CFN_TASK', 'CFN_ANYTHING', 'AGENT_INDEX', 'AGENT_ID', 'SWARM_ID', 'OBJECTIVE_ID']) {
      expect(taskEnvNameProblem(name)).not.toBeNull();
      expect(err(() => parseTaskList(JSON.stringify({ task: 't', env: [{ name, value: 'v' }] }), 'jsonl'))).toMatch(/^line 1: env name/);
    }
    expect(taskEnvNameProblem('FILE_2')).toBeNull();
  });

  it('rejects a NUL byte and an oversize task with its size', () => {
    expect(err(() => parseTaskList('{"task":"a\\u0000b"}', 'jsonl'))).toMatch(/NUL/);
    expect(err(() => parseTaskList('x'.repeat(TASK_MAX_BYTES + 1), 'lines'))).toBe(
      `line 1: the task is ${TASK_MAX_BYTES + 1} bytes, above the bound of ${TASK_MAX_BYTES} bytes per task`,
    );
  });
});

describe('checkInlineTasks and checkTaskCount', () => {
  it('bounds the inline total in characters, as the CRD does', () => {
    const t = 'x'.repeat(TASK_MAX_BYTES);
    const n = Math.floor(TASKS_INLINE_MAX_CHARS / TASK_MAX_BYTES);
    expect(checkInlineTasks(Array.from({ length: n }, () => t))).toHaveLength(n);
    expect(err(() => checkInlineTasks([...Array.from({ length: n }, () => t), 'y']))).toBe(
      `spec.tasks holds ${TASKS_INLINE_MAX_CHARS + 1} characters, above the bound of ${TASKS_INLINE_MAX_CHARS} for an inline list (use spec.tasksFrom)`,
    );
  });

  it('names both numbers on a mismatch and refuses an empty list', () => {
    expect(err(() => checkTaskCount([{ task: 'a' }, { task: 'b' }], 3, 'ConfigMap t key k'))).toBe(
      'ConfigMap t key k holds 2 tasks but agents is 3: give one task per agent',
    );
    expect(err(() => checkTaskCount([], 3, 'x'))).toBe('x holds no task');
    expect(() => checkTaskCount([{ task: 'a' }], 1, 'x')).not.toThrow();
  });
});
