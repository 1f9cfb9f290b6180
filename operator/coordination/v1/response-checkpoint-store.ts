// The V1 coordinator's checkpoint store: objectives, their agents' final
// responses and a small key/value store, in one SQLite file (node:sqlite, WAL). Every
// response is committed as it arrives, so a coordinator killed mid-run resumes
// without re-running an agent whose final response (completed or failed) is in.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { z } from 'zod';
import type { AgentResponse, ObjectiveSpec, SwarmRunState } from '../types.js';
import { parseObjectiveSpec } from './objective-spec-schema.js';
import { isWholeSwarm, runRange } from '../index-range.js';
import { agentResponseSchema, swarmRunStateSchema } from '../response-schema.js';

/** V1's SQLite file unless told otherwise, relative to the working directory. */
export const DEFAULT_MEMORY_PATH = '.cfn/memory.sqlite';
/**
 * The design's name for the same file: used when it exists and the default
 * does not, so an objective checkpointed under that name still resumes.
 */
export const DESIGN_MEMORY_PATH = '.claude-flow/memory.sqlite';

/** DEFAULT_MEMORY_PATH, or DESIGN_MEMORY_PATH when only that one exists under `cwd`. */
export function defaultMemoryPath(cwd: string = process.cwd()): string {
  return !existsSync(resolve(cwd, DEFAULT_MEMORY_PATH)) && existsSync(resolve(cwd, DESIGN_MEMORY_PATH)) ? DESIGN_MEMORY_PATH : DEFAULT_MEMORY_PATH;
}

/**
 * Where a spec's run is checkpointed: the objective id for the whole swarm, else
 * "<id>@<start>-<end>" (end exclusive) for an index range. Each shard of an
 * objective is a checkpoint of its own, so shards sharing one store (`cfn run
 * --shard` in one directory) never share status, owner or counts; `@` cannot
 * occur in an id, so no key of a range is ever an objective id.
 */
export function checkpointKey(spec: Pick<ObjectiveSpec, 'id' | 'agents' | 'indexRange'>): string {
  if (isWholeSwarm(spec)) return spec.id;
  const r = runRange(spec);
  return `${spec.id}@${r.start}-${r.end}`;
}

const SCHEMA_VERSION = 1;

// One response shape for V1 and V2: the schema the V2 result collector parses with.
const responseSchema = agentResponseSchema satisfies z.ZodType<AgentResponse>;
const runStateSchema = swarmRunStateSchema;

export interface StoredObjective {
  spec: ObjectiveSpec;
  status: SwarmRunState;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** The coordinator process that last ran it and has not finished it, if any. */
  owner: string | null;
}

export class CheckpointStoreCorruptionError extends Error {
  constructor(file: string, what: string, detail: string) {
    super(`${file}: ${what}: ${detail}`);
    this.name = 'CheckpointStoreCorruptionError';
  }
}

interface Statements {
  getObjective: StatementSync;
  insertObjective: StatementSync;
  setObjectiveStatus: StatementSync;
  restartObjective: StatementSync;
  insertResponse: StatementSync;
  listResponses: StatementSync;
  getResponse: StatementSync;
  countResponses: StatementSync;
  listObjectiveIds: StatementSync;
  kvGet: StatementSync;
  kvSet: StatementSync;
  kvDelete: StatementSync;
}

export class ResponseCheckpointStore {
  readonly file: string;
  private db: DatabaseSync | undefined;
  private st: Statements | undefined;

  constructor(file: string = defaultMemoryPath()) {
    this.file = resolve(file);
  }

  get isOpen(): boolean {
    return this.db !== undefined;
  }

  open(): void {
    if (this.db) return;
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    // Loaded here, not at import: node:sqlite prints an ExperimentalWarning on
    // load, which a V2-only run (that merely imports the factory) should not see.
    const { DatabaseSync: Database } = process.getBuiltinModule('node:sqlite');
    const db = new Database(this.file);
    try {
      db.exec('PRAGMA journal_mode = WAL');
      // NORMAL under WAL: a committed response survives a process crash (not a power cut).
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA busy_timeout = 5000');
      db.exec('PRAGMA foreign_keys = ON');
      this.migrate(db);
      this.st = prepare(db);
      this.db = db;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  close(): void {
    if (!this.db) return;
    const db = this.db;
    this.db = undefined;
    this.st = undefined;
    db.close();
  }

  private migrate(db: DatabaseSync): void {
    const row = db.prepare('PRAGMA user_version').get() as { user_version: number } | undefined;
    const version = row?.user_version ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new CheckpointStoreCorruptionError(this.file, 'schema', `version ${version} is newer than this coordinator (${SCHEMA_VERSION})`);
    }
    if (version === SCHEMA_VERSION) return;
    this.inTransaction(db, () => {
      db.exec(`
        CREATE TABLE IF NOT EXISTS objectives (
          id TEXT PRIMARY KEY,
          spec TEXT NOT NULL,
          status TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          started_at INTEGER,
          finished_at INTEGER,
          -- "<pid>:<process start time>" of the coordinator running it, NULL when none.
          owner TEXT
        );
        CREATE TABLE IF NOT EXISTS responses (
          objective_id TEXT NOT NULL REFERENCES objectives(id) ON DELETE CASCADE,
          idx INTEGER NOT NULL,
          status TEXT NOT NULL,
          response TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          PRIMARY KEY (objective_id, idx)
        );
        CREATE TABLE IF NOT EXISTS kv (
          namespace TEXT NOT NULL,
          key TEXT NOT NULL,
          value TEXT NOT NULL,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (namespace, key)
        );
        PRAGMA user_version = ${SCHEMA_VERSION};
      `);
    });
  }

  private inTransaction<R>(db: DatabaseSync, fn: () => R): R {
    db.exec('BEGIN IMMEDIATE');
    try {
      const r = fn();
      db.exec('COMMIT');
      return r;
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  }

  private ready(): { db: DatabaseSync; st: Statements } {
    if (!this.db || !this.st) throw new Error(`memory ${this.file} is not open`);
    return { db: this.db, st: this.st };
  }

  /** Runs `fn` in one transaction (all or nothing). */
  transaction<R>(fn: () => R): R {
    return this.inTransaction(this.ready().db, fn);
  }

  getObjective(id: string): StoredObjective | undefined {
    const row = this.ready().st.getObjective.get(id) as
      { spec: string; status: string; created_at: number; started_at: number | null; finished_at: number | null; owner: string | null } | undefined;
    if (!row) return undefined;
    let spec: ObjectiveSpec;
    try {
      spec = parseObjectiveSpec(JSON.parse(row.spec));
    } catch (err) {
      throw new CheckpointStoreCorruptionError(this.file, `objective ${id}`, (err as Error).message);
    }
    const status = runStateSchema.safeParse(row.status);
    if (!status.success) throw new CheckpointStoreCorruptionError(this.file, `objective ${id}`, `bad status ${JSON.stringify(row.status)}`);
    return { spec, status: status.data, createdAt: row.created_at, startedAt: row.started_at, finishedAt: row.finished_at, owner: row.owner };
  }

  /**
   * Creates the objective (under its checkpointKey), or marks an existing one running again. Indexes given
   * as completedIndexes and failedIndexes are remembered (a union over calls),
   * so a resume in a new process still counts them. Returns the stored spec.
   */
  beginObjective(spec: ObjectiveSpec, owner: string | null = null, now = Date.now()): { created: boolean; spec: ObjectiveSpec } {
    const { st } = this.ready();
    const key = checkpointKey(spec);
    return this.transaction(() => {
      const existing = this.getObjective(key);
      if (!existing) {
        st.insertObjective.run(key, JSON.stringify(spec), 'running', now, now, owner);
        return { created: true, spec };
      }
      const union = (a: readonly number[] | undefined, b: readonly number[] | undefined) => [...new Set([...(a ?? []), ...(b ?? [])])].sort((x, y) => x - y);
      const completedIndexes = union(existing.spec.completedIndexes, spec.completedIndexes);
      const done = new Set(completedIndexes);
      const failedIndexes = union(existing.spec.failedIndexes, spec.failedIndexes).filter((i) => !done.has(i));
      const stored: ObjectiveSpec = { ...spec, completedIndexes, ...(failedIndexes.length ? { failedIndexes } : {}) };
      st.restartObjective.run(JSON.stringify(stored), now, owner, key);
      return { created: false, spec: stored };
    });
  }

  setObjectiveStatus(id: string, status: SwarmRunState, now = Date.now()): void {
    const finished = status === 'running' || status === 'pending' ? null : now;
    this.ready().st.setObjectiveStatus.run(status, finished, id);
  }

  /** Stores an agent's final response; false when one was already stored (the first wins). */
  recordResponse(objectiveId: string, response: AgentResponse, now = Date.now()): boolean {
    const r = this.ready().st.insertResponse.run(objectiveId, response.index, response.status, JSON.stringify(response), now);
    return Number(r.changes) === 1;
  }

  listResponses(objectiveId: string): AgentResponse[] {
    const rows = this.ready().st.listResponses.all(objectiveId) as Array<{ response: string }>;
    return rows.map((row) => this.parseResponse(objectiveId, row.response));
  }

  getResponse(objectiveId: string, index: number): AgentResponse | undefined {
    const row = this.ready().st.getResponse.get(objectiveId, index) as { response: string } | undefined;
    return row ? this.parseResponse(objectiveId, row.response) : undefined;
  }

  countResponses(objectiveId: string): { completed: number; failed: number } {
    const rows = this.ready().st.countResponses.all(objectiveId) as Array<{ status: string; n: number }>;
    const out = { completed: 0, failed: 0 };
    for (const r of rows) if (r.status === 'completed' || r.status === 'failed') out[r.status] = Number(r.n);
    return out;
  }

  /** Objectives not finished successfully: what a restarted coordinator can resume. */
  listObjectiveIds(status?: SwarmRunState): string[] {
    const rows = this.ready().st.listObjectiveIds.all() as Array<{ id: string; status: string }>;
    return rows.filter((r) => status === undefined || r.status === status).map((r) => r.id);
  }

  kvGet(namespace: string, key: string): string | undefined {
    const row = this.ready().st.kvGet.get(namespace, key) as { value: string } | undefined;
    return row?.value;
  }

  kvSet(namespace: string, key: string, value: string, now = Date.now()): void {
    this.ready().st.kvSet.run(namespace, key, value, now);
  }

  kvDelete(namespace: string, key: string): boolean {
    return Number(this.ready().st.kvDelete.run(namespace, key).changes) === 1;
  }

  private parseResponse(objectiveId: string, text: string): AgentResponse {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new CheckpointStoreCorruptionError(this.file, `response of ${objectiveId}`, (err as Error).message);
    }
    const parsed = responseSchema.safeParse(raw);
    if (!parsed.success) {
      throw new CheckpointStoreCorruptionError(this.file, `response of ${objectiveId}`, parsed.error.issues[0]?.message ?? 'invalid');
    }
    return parsed.data;
  }
}

function prepare(db: DatabaseSync): Statements {
  return {
    getObjective: db.prepare('SELECT spec, status, created_at, started_at, finished_at, owner FROM objectives WHERE id = ?'),
    insertObjective: db.prepare('INSERT INTO objectives (id, spec, status, created_at, started_at, owner) VALUES (?, ?, ?, ?, ?, ?)'),
    // Any final state releases ownership.
    setObjectiveStatus: db.prepare('UPDATE objectives SET status = ?, finished_at = ?, owner = NULL WHERE id = ?'),
    restartObjective: db.prepare("UPDATE objectives SET spec = ?, status = 'running', started_at = ?, finished_at = NULL, owner = ? WHERE id = ?"),
    insertResponse: db.prepare('INSERT OR IGNORE INTO responses (objective_id, idx, status, response, created_at) VALUES (?, ?, ?, ?, ?)'),
    listResponses: db.prepare('SELECT response FROM responses WHERE objective_id = ? ORDER BY idx'),
    getResponse: db.prepare('SELECT response FROM responses WHERE objective_id = ? AND idx = ?'),
    countResponses: db.prepare('SELECT status, COUNT(*) AS n FROM responses WHERE objective_id = ? GROUP BY status'),
    listObjectiveIds: db.prepare('SELECT id, status FROM objectives ORDER BY created_at, id'),
    kvGet: db.prepare('SELECT value FROM kv WHERE namespace = ? AND key = ?'),
    kvSet: db.prepare(
      'INSERT INTO kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    ),
    kvDelete: db.prepare('DELETE FROM kv WHERE namespace = ? AND key = ?'),
  };
}
