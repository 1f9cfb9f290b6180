// bash -> TS: watches <root>/responses/ and <root>/status.json with fs.watch
// (inotify; no polling loop), parses every file with zod, quarantines what does
// not parse (counted, never a crash), and emits each response once.
import { EventEmitter } from 'node:events';
import { readFileSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { copyFile, mkdir, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentResponse } from '../types.js';
import { inRange } from '../index-range.js';
import type { IndexRange } from '../index-range.js';
import { agentResponseSchema, parseJsonWith, statusFileSchema } from './schemas.js';
import type { StatusFile } from './schemas.js';

export interface QuarantineEvent {
  file: string;
  reason: string;
}

export interface ResultCollectorEvents {
  response: [AgentResponse];
  status: [StatusFile];
  quarantine: [QuarantineEvent];
  error: [Error];
}

const RESPONSE_NAME = /^agent-(0|[1-9]\d*)\.json$/;

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export class ResultCollector extends EventEmitter<ResultCollectorEvents> {
  readonly root: string;
  private readonly responsesDir: string;
  private readonly quarantineDir: string;
  private readonly responses = new Map<number, AgentResponse>();
  private rootWatcher: FSWatcher | undefined;
  private responsesWatcher: FSWatcher | undefined;
  private readonly pending = new Set<string>();
  private readonly seen = new Set<string>();
  private active = 0;
  private drainScheduled = false;
  private idleWaiters: (() => void)[] = [];
  private lastStatusText = '';
  private latestStatus: StatusFile | undefined;
  private quarantineSeq = 0;
  private quarantinedCount = 0;
  private closed = false;

  /** `range`, when given, bounds the agent index (a response for an agent outside it is quarantined). */
  constructor(
    root: string,
    private readonly range?: IndexRange,
  ) {
    super();
    this.root = root;
    this.responsesDir = join(root, 'responses');
    this.quarantineDir = join(root, 'quarantine');
  }

  get quarantined(): number {
    return this.quarantinedCount;
  }

  get status(): StatusFile | undefined {
    return this.latestStatus;
  }

  /** Responses collected so far, by agent index. */
  collected(): AgentResponse[] {
    return [...this.responses.values()].sort((a, b) => a.index - b.index);
  }

  /** Starts watching; the root must exist. responses/ may appear later. */
  async start(): Promise<void> {
    this.rootWatcher = watch(this.root, { persistent: false }, (_event, name) => {
      if (name === 'status.json') void this.readStatus().catch((err: unknown) => this.onWatchError(toError(err)));
      else if (name === 'responses') this.attachResponses();
    });
    this.rootWatcher.on('error', (err) => this.onWatchError(err));
    this.attachResponses();
    await this.readStatus();
  }

  /** Reads everything currently on disk (after the engine exited) and waits for in-flight reads. */
  async sweep(): Promise<void> {
    await this.scanResponses();
    await this.readStatus();
    await this.idle();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.rootWatcher?.close();
    this.responsesWatcher?.close();
    this.rootWatcher = undefined;
    this.responsesWatcher = undefined;
    await this.idle();
  }

  private onWatchError(err: Error): void {
    // The root being removed under us (cleanup, stop) ends watching; it is not a crash.
    if (isMissing(err) || this.closed) return;
    this.emit('error', err);
  }

  private attachResponses(): void {
    if (this.responsesWatcher || this.closed) return;
    try {
      this.responsesWatcher = watch(this.responsesDir, { persistent: false }, (_event, name) => {
        if (name) this.enqueue(name);
      });
      this.responsesWatcher.on('error', (err) => this.onWatchError(err));
    } catch (err) {
      if (isMissing(err)) return; // not created yet: the root watcher calls us again
      throw err;
    }
    // Files published before the watcher existed.
    void this.scanResponses().catch((err: unknown) => this.onWatchError(toError(err)));
  }

  private async scanResponses(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.responsesDir);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    for (const name of names) this.enqueue(name);
  }

  private enqueue(name: string): void {
    // Dot entries are the engine's staging area (responses/.tmp).
    if (name.startsWith('.') || this.seen.has(name) || this.pending.has(name)) return;
    this.pending.add(name);
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    // One synchronous pass per event-loop turn for a burst of inotify events,
    // not a promise chain per file: the CPU it saves is the engine's.
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.drainScheduled = false;
    for (const name of this.pending) {
      this.pending.delete(name);
      try {
        const quarantining = this.readResponse(name);
        if (quarantining) this.track(quarantining);
      } catch (err) {
        this.onWatchError(toError(err));
      }
    }
    this.settle();
  }

  /** Quarantine moves are asynchronous: idle() waits for them too. */
  private track(work: Promise<void>): void {
    this.active += 1;
    void work
      .catch((err: unknown) => this.onWatchError(toError(err)))
      .finally(() => {
        this.active -= 1;
        this.settle();
      });
  }

  private isIdle(): boolean {
    return this.active === 0 && this.pending.size === 0 && !this.drainScheduled;
  }

  private settle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Reads one response synchronously (a small tmpfs file, tens of microseconds); returns the quarantine move when it does not parse. */
  private readResponse(name: string): Promise<void> | undefined {
    const path = join(this.responsesDir, name);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Gone (cleanup or an unlink event) or a directory: nothing to collect.
      if (code === 'ENOENT' || code === 'EISDIR') return undefined;
      throw err;
    }
    const m = RESPONSE_NAME.exec(name);
    if (!m) return this.quarantine(path, name, 'file name is not agent-<index>.json');
    const parsed = parseJsonWith(agentResponseSchema, text);
    if (!parsed.ok) return this.quarantine(path, name, parsed.reason);
    const response = parsed.value;
    if (this.range !== undefined && !inRange(this.range, response.index)) {
      return this.quarantine(path, name, `index ${response.index} is outside ${this.range.start}..${this.range.end - 1}`);
    }
    if (String(response.index) !== m[1]) return this.quarantine(path, name, `index ${response.index} does not match file name`);
    this.seen.add(name);
    if (this.responses.has(response.index)) return undefined;
    this.responses.set(response.index, response);
    this.emit('response', response);
    return undefined;
  }

  private async quarantine(path: string, name: string, reason: string): Promise<void> {
    await mkdir(this.quarantineDir, { recursive: true, mode: 0o700 });
    this.quarantineSeq += 1;
    const target = join(this.quarantineDir, `${name}.${Date.now()}.${this.quarantineSeq}`);
    try {
      await rename(path, target);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    this.quarantinedCount += 1;
    this.emit('quarantine', { file: target, reason });
  }

  private statusChain: Promise<void> = Promise.resolve();

  /** Status reads are serialized so an older status.json never overtakes a newer one. */
  private readStatus(): Promise<void> {
    const next = this.statusChain.then(() => this.readStatusOnce());
    this.statusChain = next.catch(() => undefined);
    return next;
  }

  private async readStatusOnce(): Promise<void> {
    if (this.closed) return;
    const path = join(this.root, 'status.json');
    let text: string;
    try {
      // Synchronous, like the responses: a small tmpfs file.
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    if (text === this.lastStatusText) return;
    this.lastStatusText = text;
    const parsed = parseJsonWith(statusFileSchema, text);
    if (!parsed.ok) {
      // status.json belongs to the completion detector, which rewrites it; keep a copy
      // for inspection instead of moving the live file away.
      await mkdir(this.quarantineDir, { recursive: true, mode: 0o700 });
      this.quarantineSeq += 1;
      const target = join(this.quarantineDir, `status.json.${Date.now()}.${this.quarantineSeq}`);
      await copyFile(path, target).catch(() => undefined);
      this.quarantinedCount += 1;
      this.emit('quarantine', { file: target, reason: parsed.reason });
      return;
    }
    this.latestStatus = parsed.value;
    this.emit('status', parsed.value);
  }
}
