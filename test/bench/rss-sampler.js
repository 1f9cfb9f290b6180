// Samples the RSS of one process tree from /proc every SAMPLE_MS until the
// root is gone or TERM arrives, then prints {peakTreeKb, peakChildrenKb}.
// Its own process (started by run.js at nice 19), reading /proc synchronously
// and seldom: the async per-file reads of a 20 ms sampler in the bench's own
// Node took CPU from what it measured (a 500-agent V2 run: 1.3 -> 2.4 s).
import { readdirSync, readFileSync } from 'node:fs';

const [, , rootPidArg, sampleMsArg] = process.argv;
const rootPid = Number(rootPidArg);
const sampleMs = Number(sampleMsArg);
const pageKb = 4;

let peakTreeKb = 0;
let peakChildrenKb = 0;
let done = false;

/** pid -> [ppid, rssKb] for every process readable now. */
function snapshot() {
  const procs = new Map();
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    // Fields after the command, which may hold spaces and parentheses.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    procs.set(Number(name), [Number(f[1]), Number(f[21]) * pageKb]);
  }
  return procs;
}

function sample() {
  const procs = snapshot();
  if (!procs.has(rootPid)) return finish();
  const children = new Map();
  for (const [pid, [ppid]] of procs) {
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  let others = 0;
  const stack = [...(children.get(rootPid) ?? [])];
  while (stack.length > 0) {
    const pid = stack.pop();
    others += procs.get(pid)[1];
    stack.push(...(children.get(pid) ?? []));
  }
  peakChildrenKb = Math.max(peakChildrenKb, others);
  peakTreeKb = Math.max(peakTreeKb, others + procs.get(rootPid)[1]);
}

function finish() {
  if (done) return;
  done = true;
  clearInterval(timer);
  process.stdout.write(`${JSON.stringify({ peakTreeKb, peakChildrenKb })}\n`);
}

const timer = setInterval(sample, sampleMs);
sample();
process.on('SIGTERM', finish);
