// One clear message per bad config file: which file, which field, what was
// expected and what was found, so an operator can fix it without reading code.
import { relative, isAbsolute } from 'node:path';
import type { z } from 'zod';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${displayPath(file)}: ${field ? `${field}: ` : ''}${detail}`);
    this.name = 'ConfigError';
  }
}

/** Paths under the working directory are shown relative to it (`config/v2-config.json`). */
export function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    const text = JSON.stringify(value);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  } catch {
    return String(value);
  }
}

function bound(issue: { inclusive?: boolean }, strictOp: string, inclusiveOp: string): string {
  return issue.inclusive === false ? strictOp : inclusiveOp;
}

/** "expected number >= 1, got "x"" style detail for one zod issue (parse with reportInput). */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const got = `got ${show(issue.input)}`;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected === 'int' ? 'integer' : issue.expected}, ${got}`;
    case 'too_small':
      return `expected ${issue.origin} ${bound(issue, '>', '>=')} ${String(issue.minimum)}, ${got}`;
    case 'too_big':
      return `expected ${issue.origin} ${bound(issue, '<', '<=')} ${String(issue.maximum)}, ${got}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => show(v)).join(' | ')}, ${got}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'not_multiple_of':
      return `expected a multiple of ${String(issue.divisor)}, ${got}`;
    default:
      return `${issue.message}, ${got}`;
  }
}

/** Parses `data` with `schema` or throws a ConfigError naming the file and the first bad field. */
export function parseConfig<T>(schema: z.ZodType<T>, data: unknown, file: string, fieldPrefix = ''): T {
  const parsed = schema.safeParse(data, { reportInput: true });
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  if (!issue) throw new ConfigError(file, fieldPrefix, 'invalid');
  const path = [fieldPrefix, ...issue.path.map((p) => String(p))].filter((p) => p !== '').join('.');
  // unrecognized_keys reports the parent; name the first unknown key as the field.
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    throw new ConfigError(file, [path, key].filter((p) => p !== '').join('.'), describeIssue(issue));
  }
  throw new ConfigError(file, path || '(root)', describeIssue(issue));
}
