// Results on a filesystem (the swarm's volume mounted in the coordinator pod):
// one file per agent index, <root>/<namespace>/<name>/<uid>/<index>.json,
// each written atomically and durably (temp file, fsync, rename, directory
// fsync), so a reader sees a whole record or the earlier one, never a part.
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { atomicWrite, fsyncDir, isTempFile } from '../util/atomic-write.js';
import { indexOfKey, resultDir, resultKey, storedResult } from './stored-result.js';
import type { ResultScope, StoredResult } from './stored-result.js';
import { inRange } from './result-sink.js';
import type { IndexRange, ResultSink, ResultSource, ResultsType, UnreadableRecord } from './result-sink.js';

/** A scope's parts become directory names: only names Kubernetes could give (no "..", no "/"). */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

function scopeDir(root: string, scope: ResultScope): string {
  for (const [field, v] of Object.entries(scope)) {
    if (!SEGMENT.test(v)) throw new Error(`results scope ${field} ${JSON.stringify(v)} is not a valid directory name`);
  }
  return join(root, resultDir(scope));
}

/**
 * One directory flush shared by every rename that happened before it started:
 * a put resolves once a flush that began after its rename has finished.
 */
class BatchedDirSync {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  sync(dir: string): Promise<void> {
    if (!this.running) return this.start(dir);
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.start(dir);
      });
    return this.queued;
  }

  private start(dir: string): Promise<void> {
    const p: Promise<void> = fsyncDir(dir).finally(() => {
      if (this.running === p) this.running = undefined;
    });
    this.running = p;
    return p;
  }
}

export interface DirectorySinkOptions {
  /** The volume's mount (CFN_RESULTS_DIR). */
  root: string;
  scope: ResultScope;
  type: Extract<ResultsType, 'persistentVolumeClaim' | 'emptyDir'>;
  /** For status.results.location, e.g. pvc://<claim>/<namespace>/<name>/<uid>/. */
  location: string;
}

export class DirectorySink implements ResultSink {
  readonly type: DirectorySinkOptions['type'];
  readonly location: string;
  private readonly dir: string;
  private readonly dirSync = new BatchedDirSync();
  private ready: Promise<void> | undefined;

  constructor(private readonly opts: DirectorySinkOptions) {
    this.type = opts.type;
    this.location = opts.location;
    this.dir = scopeDir(opts.root, opts.scope);
  }

  async put(record: StoredResult): Promise<{ bytes: number }> {
    await this.ensureDir();
    const data = `${JSON.stringify(record)}\n`;
    await atomicWrite(join(this.opts.root, resultKey(this.opts.scope, record.index)), data, { mode: 0o644, durable: { syncDir: (d) => this.dirSync.sync(d) } });
    return { bytes: Buffer.byteLength(data) };
  }

  /**
   * The records already in the scope (an earlier coordinator's), by index
   * with their size. Called as a coordinator starts: temp files there are
   * writes a dead coordinator never finished, removed to free their space
   * (a writer still alive on a lost node only retries its put).
   */
  async inventory(range?: IndexRange): Promise<Array<{ index: number; bytes: number }>> {
    const names = await readdir(this.dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [] as string[];
      throw e;
    });
    const found: Array<{ index: number; bytes: number }> = [];
    for (const name of names) {
      if (isTempFile(name)) {
        // ".<index>.json.<pid>.<random>.tmp": another shard's writes on a shared claim are not ours to remove.
        const of = indexOfKey(name.slice(1, name.indexOf('.json.') + 5));
        if (of === undefined || inRange(of, range)) await unlink(join(this.dir, name)).catch(() => undefined);
        continue;
      }
      const index = indexOfKey(name);
      if (index === undefined || !inRange(index, range)) continue;
      const st = await stat(join(this.dir, name)).catch(() => undefined);
      if (st?.isFile()) found.push({ index, bytes: st.size });
    }
    return found.sort((a, b) => a.index - b.index);
  }

  /** Creates the scope's directories once and makes their entries durable; retried after a failure. */
  private ensureDir(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o755 });
      // The new directories' own entries: each parent up to the root.
      for (let d = this.dir; d.length > this.opts.root.length && d !== dirname(d); d = dirname(d)) await fsyncDir(dirname(d));
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }
}

/** Records read at once: enough to hide file latency, few enough for a small pod. */
const READ_CONCURRENCY = 16;

export class DirectorySource implements ResultSource {
  private readonly dir: string;

  constructor(root: string, scope: ResultScope) {
    this.dir = scopeDir(root, scope);
  }

  async read(): Promise<{ results: StoredResult[]; unreadable: UnreadableRecord[] }> {
    const names = await readdir(this.dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [] as string[];
      throw e;
    });
    const results: StoredResult[] = [];
    const unreadable: UnreadableRecord[] = [];
    const records: Array<{ name: string; index: number }> = [];
    for (const name of names) {
      // A write under way (or one a crash cut short): never a record.
      if (isTempFile(name)) continue;
      const index = indexOfKey(name);
      if (index === undefined) unreadable.push({ key: name, reason: 'not a record name (<index>.json)' });
      else records.push({ name, index });
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < records.length) {
        const { name, index } = records[next++]!;
        const r = await this.readOne(name, index);
        if ('reason' in r) unreadable.push(r);
        else results.push(r);
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, records.length) }, worker));
    results.sort((a, b) => a.index - b.index);
    unreadable.sort((a, b) => a.key.localeCompare(b.key));
    return { results, unreadable };
  }

  private async readOne(name: string, index: number): Promise<StoredResult | UnreadableRecord> {
    let text: string;
    try {
      text = await readFile(join(this.dir, name), 'utf8');
    } catch (err) {
      return { key: name, reason: (err as Error).message };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      return { key: name, reason: `not JSON: ${(err as Error).message}` };
    }
    const parsed = storedResult.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { key: name, reason: `not a result record: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}` };
    }
    if (parsed.data.index !== index) return { key: name, reason: `holds index ${parsed.data.index}, not ${index}` };
    return parsed.data;
  }
}
