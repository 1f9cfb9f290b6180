// Runs an Argo CD health script the way Argo CD does (the object as the
// global `obj`, the script returning {status, message}) under Debian's
// lua5.1: Argo CD's gopher-lua implements Lua 5.1.
import { execFileSync } from 'node:child_process';

/** A JSON value as a Lua table constructor: objects keyed by string, arrays 1-based, null absent (nil). */
export function toLua(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`not a JSON number: ${v}`);
    return String(v);
  }
  if (typeof v === 'string') {
    // Decimal escapes for control bytes; everything else (UTF-8 included) is taken as is.
    // eslint-disable-next-line no-control-regex
    return `"${v.replace(/[\\"]/g, '\\$&').replace(/[\x00-\x1f\x7f]/g, (ch) => `\\${ch.charCodeAt(0)}`)}"`;
  }
  if (Array.isArray(v)) return `{${v.map(toLua).join(', ')}}`;
  if (typeof v === 'object') {
    const fields = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== null && x !== undefined)
      .map(([k, x]) => `[${toLua(k)}] = ${toLua(x)}`);
    return `{${fields.join(', ')}}`;
  }
  throw new Error(`not a JSON value: ${typeof v}`);
}

export interface HealthStatus {
  status: string;
  message: string;
}

const RUNNER = `
local script, input = ...
obj = assert(loadstring(input, "=obj"))()
local hs = assert(loadfile(script))()
assert(type(hs) == "table", "the health script returned no table")
io.write(tostring(hs.status), "\\n", tostring(hs.message or ""))
`;

/** The health the script at `scriptPath` gives `object`. */
export function runHealthScript(scriptPath: string, object: unknown): HealthStatus {
  const out = execFileSync('lua5.1', ['-e', RUNNER.replace('local script, input = ...', `local script, input = ${toLua(scriptPath)}, io.read("*a")`)], {
    input: `return ${toLua(object)}`,
    encoding: 'utf8',
  });
  const nl = out.indexOf('\n');
  return { status: out.slice(0, nl), message: out.slice(nl + 1) };
}
