import { EventEmitter } from "node:events";
import type BetterSqlite3 from "better-sqlite3";
import type { KeyvStoreAdapter, StoredData } from "keyv";

export interface SqliteAdapterOptions {
  /** The database file's absolute path; its folder must exist. */
  path: string;
  table: string;
  /** The `synchronous` pragma: NORMAL (a commit is a WAL write) or FULL (every commit fsyncs). */
  synchronous: "NORMAL" | "FULL";
  /** How long opening (table, pragmas) waits for a lock held by another connection, in ms. */
  openTimeoutMs: number;
  /** How long a statement waits for a lock held by another connection, in ms. */
  busyTimeoutMs: number;
}

/**
 * Opens (creating if need be) a sqlite file as a Keyv store adapter backed by better-sqlite3,
 * in WAL mode. Throws if the file cannot be opened or is not a database.
 */
export async function createSqliteAdapter(opts: SqliteAdapterOptions): Promise<KeyvBetterSqlite> {
  // Loaded here, not at the top: only sqlite stores need the native module.
  const { default: Database } = await import("better-sqlite3");
  const db = new Database(opts.path, { timeout: milliseconds(opts.openTimeoutMs) });
  try {
    return new KeyvBetterSqlite(db, opts);
  } catch (err) {
    db.close();
    throw err;
  }
}

interface Row {
  key: string;
  value: string;
}

/**
 * A Keyv store adapter over one better-sqlite3 connection. Statements run synchronously, in
 * microseconds (node-sqlite3, behind @keyv/sqlite, sent each one through libuv's thread pool);
 * the methods still return promises, as Keyv expects, and an error always becomes a rejection.
 * Every statement is prepared once. The table is the one @keyv/sqlite 4 creates, so files it
 * wrote open unchanged: `key VARCHAR(255) PRIMARY KEY, value TEXT`, the value being the string
 * Keyv's serializer made, stored and returned as is. Nothing is emitted on "error".
 */
export class KeyvBetterSqlite extends EventEmitter implements KeyvStoreAdapter {
  readonly opts: { dialect: "sqlite"; url: string; table: string };
  /** Set by Keyv: keys of this namespace are `<namespace>:…`; clear() removes only those. */
  namespace?: string | undefined;
  private readonly statements: ReturnType<typeof prepare>;
  private readonly setManyTransaction: (entries: ReadonlyArray<{ key: string; value: unknown }>) => void;

  constructor(
    /** The connection, for diagnostics and tests; closed by disconnect(). */
    readonly db: BetterSqlite3.Database,
    opts: SqliteAdapterOptions,
  ) {
    super();
    const table = opts.table;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) throw new TypeError(`invalid sqlite table name "${table}"`);
    this.opts = { dialect: "sqlite", url: `sqlite://${opts.path}`, table };
    // WAL with synchronous=NORMAL: a commit is a write to the WAL, not an fsync, so each
    // journal write costs microseconds, and a killed process loses nothing it committed.
    // Only a power loss or OS crash can roll back the last commits; `?synchronous=full`
    // fsyncs every commit instead (about 100x slower on ordinary disks).
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${opts.synchronous}`);
    // Exactly @keyv/sqlite 4.0.8's statement (trailing space included), so sqlite_master reads the same.
    db.exec(`CREATE TABLE IF NOT EXISTS ${table}(key VARCHAR(255) PRIMARY KEY, value TEXT )`);
    db.pragma(`busy_timeout = ${milliseconds(opts.busyTimeoutMs)}`);
    this.statements = prepare(db, table);
    // One transaction: all or nothing; a key given twice keeps its last value.
    this.setManyTransaction = db.transaction((entries: ReadonlyArray<{ key: string; value: unknown }>) => {
      for (const { key, value } of entries) this.upsert(key, value);
    });
  }

  get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return settle(() => this.statements.get.get(key) as StoredData<Value> | undefined);
  }

  getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return settle(() => {
      if (keys.length === 0) return [];
      const found = new Map<string, string>();
      for (const row of this.statements.getMany.all(JSON.stringify(keys))) found.set(row.key, row.value);
      return keys.map((key) => found.get(key) as StoredData<Value | undefined>);
    });
  }

  /** The ttl is ignored: Keyv writes the expiry time into the value and checks it on read. */
  set(key: string, value: unknown): Promise<void> {
    return settle(() => this.upsert(key, value));
  }

  setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    return settle(() => {
      if (entries.length > 0) this.setManyTransaction(entries);
    });
  }

  /**
   * Only strings: better-sqlite3 would store undefined as NULL and spread an array over the
   * statement's parameters.
   */
  private upsert(key: string, value: unknown): void {
    if (typeof value !== "string")
      throw new TypeError(`sqlite store: the value of ${key} is not a serialized string (${typeof value})`);
    this.statements.upsert.run(key, value);
  }

  /** Whether the key existed. */
  delete(key: string): Promise<boolean> {
    return settle(() => this.statements.delete.run(key).changes > 0);
  }

  /** Whether any of the keys existed. */
  deleteMany(keys: string[]): Promise<boolean> {
    return settle(() => keys.length > 0 && this.statements.deleteMany.run(JSON.stringify(keys)).changes > 0);
  }

  /** Whether a row exists (Keyv's has(): an expired value still counts). */
  has(key: string): Promise<boolean> {
    return settle(() => this.statements.has.get(key) !== undefined);
  }

  hasMany(keys: string[]): Promise<boolean[]> {
    return settle(() => {
      if (keys.length === 0) return [];
      const found = new Set(this.statements.hasMany.all(JSON.stringify(keys)));
      return keys.map((key) => found.has(key));
    });
  }

  /** Deletes this adapter's namespace (`<namespace>:…`, case-sensitive), or every row without one. */
  clear(): Promise<void> {
    return settle(() => {
      const ns = this.namespace;
      // `ns:` <= key < `ns;` holds exactly for keys starting with `ns:` (';' follows ':').
      if (ns) this.statements.clearRange.run(`${ns}:`, `${ns};`);
      else this.statements.clearAll.run();
    });
  }

  /** Closes the connection; later operations reject ("The database connection is not open"). */
  disconnect(): Promise<void> {
    return settle(() => void this.db.close());
  }
}

/** Every statement the adapter runs, prepared once. */
function prepare(db: BetterSqlite3.Database, table: string) {
  const inKeys = `key IN (SELECT value FROM json_each(?))`;
  return {
    get: db.prepare<[string], string>(`SELECT value FROM ${table} WHERE key = ?`).pluck(),
    getMany: db.prepare<[string], Row>(`SELECT key, value FROM ${table} WHERE ${inKeys}`),
    upsert: db.prepare<[string, string]>(
      `INSERT INTO ${table} (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
    ),
    delete: db.prepare<[string]>(`DELETE FROM ${table} WHERE key = ?`),
    deleteMany: db.prepare<[string]>(`DELETE FROM ${table} WHERE ${inKeys}`),
    has: db.prepare<[string], number>(`SELECT 1 FROM ${table} WHERE key = ?`).pluck(),
    hasMany: db.prepare<[string], string>(`SELECT key FROM ${table} WHERE ${inKeys}`).pluck(),
    clearRange: db.prepare<[string, string]>(`DELETE FROM ${table} WHERE key >= ? AND key < ?`),
    clearAll: db.prepare<[]>(`DELETE FROM ${table}`),
  };
}

/** A timeout as better-sqlite3 and SQLite take it: a whole number of ms that fits 31 bits. */
function milliseconds(ms: number): number {
  return Math.min(Math.ceil(ms), 0x7fffffff);
}

/** Runs synchronous work, turning its result or exception into a settled promise. */
function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}
