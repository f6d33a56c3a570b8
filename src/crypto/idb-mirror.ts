import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../common/logger.js";
import type { JsonValue } from "../store/json.js";
import type { KeyValue } from "../store/store.js";
import {
  addCommitter,
  type CommittedTransaction,
  type Committer,
  type RawDatabase,
  type RawIndex,
} from "./fake-indexeddb.js";
import { decodeKey, decodeValue, encodeKey, encodeValue, shortId } from "./idb-codec.js";

/** Index buckets per object store: a write rewrites only the buckets of the keys it touched. */
const BUCKETS = 64;
/** Records read per getMany at start. */
const READ_CHUNK = 500;

interface StoreSchema {
  /** Random, made when the store is first seen: a store deleted and made again starts empty. */
  id: string;
  keyPath: string | string[] | null;
  autoIncrement: boolean;
  indexes: Array<Pick<RawIndex, "name" | "keyPath" | "unique" | "multiEntry">>;
}

interface DatabaseSchema {
  version: number;
  stores: Record<string, StoreSchema>;
}

type Schema = Record<string, DatabaseSchema>;

/** What one object store holds, as mirrored: its record ids, per bucket. */
type StoreIndex = Array<Set<string>>;

/**
 * The write-through mirror of one in-memory IndexedDB (fake-indexeddb) into a namespace of
 * the bridge's store, under `<name>/` (a name per crypto store: "bot" for the bot's).
 *
 * Layout: `<name>/schema` (databases, versions, object stores and their indexes);
 * `<name>/b/<storeId>/<0..63>` (index buckets: the ids of the records a store holds);
 * `<name>/r/<recordId>` ([key, value], encoded by idb-codec).
 *
 * Contract:
 * - every committed readwrite or versionchange transaction is written as ONE `setMany` (its
 *   records and the buckets and schema that list them: all or nothing), in commit order,
 *   before its `complete` event reaches the code that made it; records it deleted are
 *   removed afterwards (one left behind by a crash is listed nowhere, so never read);
 * - a failed write is retried (backoff up to 5 s) until it succeeds or the mirror closes:
 *   the crypto code waits meanwhile, as the journal's writers do;
 * - `settled()` resolves once everything committed so far is written: call it before any
 *   request derived from the crypto state leaves the process;
 * - `load` fills a fresh IndexedDB from the store before the crypto code opens it.
 */
export class IdbMirror implements Committer {
  private readonly indexes = new Map<string, StoreIndex>();
  private tail: Promise<void> = Promise.resolve();
  private closed = false;
  /** Writes given up on because the mirror closed while the store refused them. */
  private abandoned = 0;
  private readonly remove: () => void;

  private constructor(
    private readonly kv: KeyValue<JsonValue>,
    private readonly name: string,
    private readonly factory: FakeFactory,
    private schema: Schema,
    private readonly log: Logger,
  ) {
    this.remove = addCommitter(this);
  }

  /**
   * Reads what `name` holds in `kv` into `factory` (a fresh IndexedDB from newIndexedDb),
   * then mirrors every later write transaction of that factory.
   */
  static async load(
    kv: KeyValue<JsonValue>,
    name: string,
    factory: unknown,
    log: Logger,
  ): Promise<IdbMirror> {
    const fake = factory as FakeFactory;
    const schema = ((await kv.get(`${name}/schema`)) ?? {}) as unknown as Schema;
    const indexes = new Map<string, StoreIndex>();
    let records = 0;
    for (const [dbName, db] of Object.entries(schema)) {
      records += await loadDatabase(kv, name, fake, dbName, db, indexes);
    }
    const mirror = new IdbMirror(kv, name, fake, schema, log);
    for (const [id, index] of indexes) mirror.indexes.set(id, index);
    log.debug({ crypto: name, databases: Object.keys(schema).length, records }, "crypto store loaded");
    return mirror;
  }

  owns(database: RawDatabase): boolean {
    return this.factory._databases.get(database.name) === database;
  }

  /**
   * Resolves once every transaction committed so far is in the store; rejects if one was
   * given up on (the mirror was closed while the store refused it).
   */
  async settled(): Promise<void> {
    await this.tail;
    if (this.abandoned > 0)
      throw new Error(
        `crypto store ${this.name}: ${this.abandoned} write(s) were not stored (closed while the store refused them)`,
      );
  }

  /**
   * Stops mirroring. What is queued is still written, except that a write failing now is
   * not retried (it is logged): what it held was never acknowledged to anyone.
   */
  async close(): Promise<void> {
    this.remove();
    this.closed = true;
    await this.tail;
  }

  committed(tx: CommittedTransaction): Promise<void> {
    const sets = new Map<string, JsonValue>();
    const deletes: string[] = [];
    const db = tx.database;
    const dbSchema = (this.schema[db.name] ??= { version: db.version, stores: {} });
    let schemaChanged = false;
    if (tx.mode === "versionchange") schemaChanged = this.updateSchema(db, dbSchema, sets, deletes);
    for (const [store, changes] of tx.changes) {
      const storeSchema = dbSchema.stores[store.name];
      if (storeSchema === undefined || store !== db.rawObjectStores.get(store.name)) continue;
      const index = this.indexOf(storeSchema.id);
      const touched = new Set<number>();
      if (changes.cleared) {
        for (const [n, bucket] of index.entries()) {
          for (const id of bucket) deletes.push(`${this.name}/r/${id}`);
          if (bucket.size > 0) touched.add(n);
          bucket.clear();
        }
        for (const record of store.records.values()) this.put(storeSchema.id, index, record, sets, touched);
      }
      for (const key of changes.keys) {
        const record = store.records.get(key);
        if (record !== undefined) this.put(storeSchema.id, index, record, sets, touched);
        else this.drop(storeSchema.id, index, encodeKey(key), deletes, touched);
      }
      for (const n of touched) {
        sets.set(`${this.name}/b/${storeSchema.id}/${n}`, [...index[n]!]);
      }
    }
    if (schemaChanged) sets.set(`${this.name}/schema`, this.schema as unknown as JsonValue);
    if (sets.size === 0 && deletes.length === 0) return this.tail;
    const entries = [...sets];
    const written = this.tail.then(() => this.write(entries, deletes));
    this.tail = written.then(() => undefined);
    // Not written (closed meanwhile): the code that made the transaction never hears of it.
    return written.then((ok) => (ok ? undefined : new Promise<void>(() => undefined)));
  }

  /** A versionchange: the database's version and stores as they are now. */
  private updateSchema(
    db: RawDatabase,
    schema: DatabaseSchema,
    sets: Map<string, JsonValue>,
    deletes: string[],
  ): boolean {
    schema.version = db.version;
    for (const [storeName, stored] of Object.entries(schema.stores)) {
      if (db.rawObjectStores.has(storeName)) continue;
      // Deleted: its records and buckets go (the new schema no longer lists them).
      for (const [n, bucket] of this.indexOf(stored.id).entries()) {
        for (const id of bucket) deletes.push(`${this.name}/r/${id}`);
        deletes.push(`${this.name}/b/${stored.id}/${n}`);
      }
      this.indexes.delete(stored.id);
      delete schema.stores[storeName];
    }
    for (const store of db.rawObjectStores.values()) {
      const indexes = [...store.rawIndexes.values()].map(({ name, keyPath, unique, multiEntry }) => ({
        name,
        keyPath,
        unique,
        multiEntry,
      }));
      const known = schema.stores[store.name];
      if (known === undefined) {
        schema.stores[store.name] = {
          id: randomBytes(9).toString("base64url"),
          keyPath: store.keyPath,
          autoIncrement: store.autoIncrement,
          indexes,
        };
        // A new store's records (none, usually) are written in full below.
        const id = schema.stores[store.name]!.id;
        const touched = new Set<number>();
        const index = this.indexOf(id);
        for (const record of store.records.values()) this.put(id, index, record, sets, touched);
        for (const n of touched) sets.set(`${this.name}/b/${id}/${n}`, [...index[n]!]);
      } else {
        known.indexes = indexes;
      }
    }
    return true;
  }

  private put(
    id: string,
    index: StoreIndex,
    record: { key: unknown; value: unknown },
    sets: Map<string, JsonValue>,
    touched: Set<number>,
  ): void {
    const key = encodeKey(record.key);
    const recordId = shortId(`${id}\u0000${key}`);
    const n = bucketOf(recordId);
    index[n]!.add(recordId);
    touched.add(n);
    sets.set(`${this.name}/r/${recordId}`, [key, encodeValue(record.value)]);
  }

  private drop(id: string, index: StoreIndex, key: string, deletes: string[], touched: Set<number>): void {
    const recordId = shortId(`${id}\u0000${key}`);
    const n = bucketOf(recordId);
    if (!index[n]!.delete(recordId)) return;
    touched.add(n);
    deletes.push(`${this.name}/r/${recordId}`);
  }

  private indexOf(storeId: string): StoreIndex {
    let index = this.indexes.get(storeId);
    if (index === undefined) this.indexes.set(storeId, (index = emptyIndex()));
    return index;
  }

  /** Writes one transaction; false when it was given up on (closed while failing). */
  private async write(entries: Array<[string, JsonValue]>, deletes: string[]): Promise<boolean> {
    for (let attempt = 0; entries.length > 0; attempt++) {
      try {
        await this.kv.setMany(entries);
        break;
      } catch (err) {
        if (this.closed) {
          this.log.error(
            { err, crypto: this.name },
            "cannot write the crypto state to the store; closing, so not retried",
          );
          this.abandoned++;
          return false;
        }
        const waitMs = Math.min(5_000, 100 * 2 ** attempt);
        this.log.error(
          { err, crypto: this.name, attempt: attempt + 1, waitMs },
          "cannot write the crypto state to the store; the crypto code waits and the write is retried",
        );
        await sleep(waitMs);
      }
    }
    if (deletes.length === 0) return true;
    // Best effort: these records are listed nowhere any more.
    await this.kv.deleteMany(deletes).catch((err: unknown) => {
      this.log.warn(
        { err, crypto: this.name, records: deletes.length },
        "could not delete unlisted crypto records",
      );
    });
    return true;
  }
}

function bucketOf(recordId: string): number {
  // The id is base64url: its first character is 6 random bits.
  return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".indexOf(recordId[0]!) % BUCKETS;
}

function emptyIndex(): StoreIndex {
  return Array.from({ length: BUCKETS }, () => new Set<string>());
}

/** Creates one database at its version, its stores and indexes, and fills them. */
async function loadDatabase(
  kv: KeyValue<JsonValue>,
  name: string,
  factory: FakeFactory,
  dbName: string,
  schema: DatabaseSchema,
  indexes: Map<string, StoreIndex>,
): Promise<number> {
  const db = await openDatabase(factory, dbName, schema);
  let count = 0;
  try {
    for (const [storeName, store] of Object.entries(schema.stores)) {
      const bucketKeys = Array.from({ length: BUCKETS }, (_, n) => `${name}/b/${store.id}/${n}`);
      const index = emptyIndex();
      (await kv.getMany(bucketKeys)).forEach((bucket, n) => {
        for (const id of (bucket ?? []) as string[]) index[n]!.add(id);
      });
      indexes.set(store.id, index);
      const ids = index.flatMap((bucket) => [...bucket]);
      for (let i = 0; i < ids.length; i += READ_CHUNK) {
        const chunk = ids.slice(i, i + READ_CHUNK);
        const records = await kv.getMany(chunk.map((id) => `${name}/r/${id}`));
        const missing = records.findIndex((r) => r === undefined);
        if (missing >= 0)
          throw new Error(
            `crypto store ${name}: record ${chunk[missing]} of ${dbName}/${storeName} is listed but missing: the store is damaged`,
          );
        await putAll(db, storeName, store.keyPath, records as Array<[string, string]>);
        count += records.length;
      }
    }
  } finally {
    db.close();
  }
  return count;
}

function openDatabase(factory: FakeFactory, dbName: string, schema: DatabaseSchema): Promise<FakeDb> {
  return new Promise((resolve, reject) => {
    const request = factory.open(dbName, schema.version);
    request.onupgradeneeded = () => {
      const db = request.result;
      for (const [storeName, store] of Object.entries(schema.stores)) {
        const created = db.createObjectStore(storeName, {
          keyPath: store.keyPath,
          autoIncrement: store.autoIncrement,
        });
        for (const index of store.indexes)
          created.createIndex(index.name, index.keyPath, {
            unique: index.unique,
            multiEntry: index.multiEntry,
          });
      }
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () =>
      reject(
        new Error(
          `crypto store: cannot recreate ${dbName} at version ${schema.version}: ${String(request.error)}`,
        ),
      );
  });
}

function putAll(
  db: FakeDb,
  storeName: string,
  keyPath: unknown,
  records: Array<[string, string]>,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const tx = db.transaction([storeName], "readwrite");
    const store = tx.objectStore(storeName);
    for (const [key, value] of records) {
      if (keyPath === null) store.put(decodeValue(value), decodeKey(key));
      else store.put(decodeValue(value));
    }
    tx.oncomplete = () => resolve();
    tx.onabort = () =>
      reject(new Error(`crypto store: cannot reload ${db.name}/${storeName}: ${String(tx.error)}`));
  });
}

/** The parts of fake-indexeddb's IDBFactory and IDBDatabase used here. */
interface FakeFactory {
  _databases: Map<string, RawDatabase>;
  open(
    name: string,
    version: number,
  ): {
    result: FakeDb;
    error: unknown;
    onupgradeneeded: (() => void) | null;
    onsuccess: (() => void) | null;
    onerror: (() => void) | null;
  };
}

interface FakeDb {
  name: string;
  close(): void;
  createObjectStore(
    name: string,
    options: { keyPath: string | string[] | null; autoIncrement: boolean },
  ): {
    createIndex(
      name: string,
      keyPath: string | string[],
      options: { unique: boolean; multiEntry: boolean },
    ): void;
  };
  transaction(
    stores: string[],
    mode: "readwrite",
  ): {
    error: unknown;
    objectStore(name: string): { put(value: unknown, key?: unknown): void };
    oncomplete: (() => void) | null;
    onabort: (() => void) | null;
  };
}
