/**
 * fake-indexeddb as the process's IndexedDB, with a hook at every committed write
 * transaction. The Rust crypto (through `@matrix-org/matrix-sdk-crypto-wasm`) can only keep
 * its state in IndexedDB, which Node does not have: fake-indexeddb keeps it in memory, and
 * the hook lets the IdbMirror copy each committed transaction into the bridge's store before
 * anyone is told the transaction completed.
 *
 * How (fake-indexeddb 6.2, pinned): its raw object stores' `storeRecord`, `deleteRecord` and
 * `clear` are wrapped to note which keys of which store changed; its transactions'
 * `dispatchEvent` holds back the `complete` event of a readwrite or versionchange
 * transaction until the committer that owns the database has written it (the next
 * transaction on that database waits too), and forgets the notes of an aborted one (the
 * rollback restored what was committed). A test pins this against the installed version.
 */
import * as fakeIndexedDbModule from "fake-indexeddb";

/** A key as IndexedDB takes it (string, number, Date, binary or arrays of those). */
export type IdbKey = unknown;

/** fake-indexeddb's raw record: what a store holds. */
export interface RawRecord {
  key: IdbKey;
  value: unknown;
}

/** fake-indexeddb's raw index (only what the mirror reads). */
export interface RawIndex {
  name: string;
  keyPath: string | string[];
  multiEntry: boolean;
  unique: boolean;
}

/** fake-indexeddb's raw object store (only what the mirror reads). */
export interface RawObjectStore {
  name: string;
  keyPath: string | string[] | null;
  autoIncrement: boolean;
  rawIndexes: Map<string, RawIndex>;
  records: {
    get(key: IdbKey): RawRecord | undefined;
    values(range?: unknown): Iterable<RawRecord>;
  };
}

/** fake-indexeddb's raw database. */
export interface RawDatabase {
  name: string;
  version: number;
  rawObjectStores: Map<string, RawObjectStore>;
}

/** What changed in one object store since its last commit. */
export interface StoreChanges {
  /** `clear()` ran: the whole store is to be written again. */
  cleared: boolean;
  /** Keys put or deleted (read again at commit: their current value, or gone). */
  keys: IdbKey[];
}

/** A committed write transaction, as the hook hands it over. */
export interface CommittedTransaction {
  database: RawDatabase;
  mode: "readwrite" | "versionchange";
  /** The stores it could write, each with its changes (none for an untouched store). */
  changes: Map<RawObjectStore, StoreChanges>;
}

/**
 * Owns some databases of one IndexedDB (factory): told of each of their committed write
 * transactions, synchronously, in commit order. The `complete` event is dispatched once the
 * returned promise resolves; it must not reject (retry inside).
 */
export interface Committer {
  owns(database: RawDatabase): boolean;
  committed(tx: CommittedTransaction): Promise<void>;
}

/** The IndexedDB globals the wasm bindings look up (`instanceof` checks and key ranges). */
const GLOBALS = [
  "IDBCursor",
  "IDBCursorWithValue",
  "IDBDatabase",
  "IDBFactory",
  "IDBIndex",
  "IDBKeyRange",
  "IDBObjectStore",
  "IDBOpenDBRequest",
  "IDBRequest",
  "IDBTransaction",
  "IDBVersionChangeEvent",
] as const;

interface FakeTransaction {
  mode: string;
  db: { _rawDatabase: RawDatabase };
  _scope: Set<string>;
}

/** The module's classes, typed only as far as used here (its types need the DOM's). */
const fakeIndexedDb = fakeIndexedDbModule as unknown as Record<string, unknown> & {
  IDBFactory: new () => unknown;
  IDBKeyRange: abstract new (...a: never[]) => unknown;
  IDBTransaction: { prototype: Record<string, unknown> };
};

const committers = new Set<Committer>();
/** Changes noted since each raw store's last commit or abort. */
const pending = new WeakMap<RawObjectStore, StoreChanges>();
let installed: Promise<void> | undefined;

/**
 * A fresh, empty in-memory IndexedDB, made the process's `indexedDB` (the wasm bindings
 * open databases through that global: call this right before opening a crypto store). The
 * hooks are installed once per process.
 */
export async function newIndexedDb(): Promise<unknown> {
  await (installed ??= install());
  const factory = new fakeIndexedDb.IDBFactory();
  (globalThis as Record<string, unknown>).indexedDB = factory;
  return factory;
}

/** Adds a committer; returns a function removing it. */
export function addCommitter(committer: Committer): () => void {
  committers.add(committer);
  return () => void committers.delete(committer);
}

async function install(): Promise<void> {
  const g = globalThis as Record<string, unknown>;
  for (const name of GLOBALS) g[name] ??= fakeIndexedDb[name];
  const objectStoreProto = await rawObjectStorePrototype();
  const KeyRange = fakeIndexedDb.IDBKeyRange;

  const storeRecord = objectStoreProto.storeRecord as (
    this: RawObjectStore,
    r: RawRecord,
    ...a: unknown[]
  ) => IdbKey;
  objectStoreProto.storeRecord = function (this: RawObjectStore, record: RawRecord, ...rest: unknown[]) {
    const key = storeRecord.call(this, record, ...rest);
    changesOf(this).keys.push(record.key);
    return key;
  };
  const deleteRecord = objectStoreProto.deleteRecord as (
    this: RawObjectStore,
    key: unknown,
    ...a: unknown[]
  ) => void;
  objectStoreProto.deleteRecord = function (this: RawObjectStore, key: unknown, ...rest: unknown[]) {
    const changes = changesOf(this);
    if (key instanceof KeyRange) for (const record of this.records.values(key)) changes.keys.push(record.key);
    else changes.keys.push(key);
    deleteRecord.call(this, key, ...rest);
  };
  const clear = objectStoreProto.clear as (this: RawObjectStore, ...a: unknown[]) => void;
  objectStoreProto.clear = function (this: RawObjectStore, ...rest: unknown[]) {
    const changes = changesOf(this);
    changes.cleared = true;
    changes.keys = [];
    clear.call(this, ...rest);
  };

  const txProto = fakeIndexedDb.IDBTransaction.prototype;
  const dispatch = txProto.dispatchEvent as (this: FakeTransaction, event: { type: string }) => boolean;
  txProto.dispatchEvent = function (this: FakeTransaction, event: { type: string }) {
    if (this.mode === "readonly") return dispatch.call(this, event);
    const database = this.db._rawDatabase;
    if (event.type === "abort") {
      for (const store of storesOf(this, database)) pending.delete(store);
      return dispatch.call(this, event);
    }
    if (event.type !== "complete") return dispatch.call(this, event);
    const committer = [...committers].find((c) => c.owns(database));
    const changes = new Map<RawObjectStore, StoreChanges>();
    for (const store of storesOf(this, database)) {
      changes.set(store, pending.get(store) ?? { cleared: false, keys: [] });
      pending.delete(store);
    }
    if (committer === undefined) return dispatch.call(this, event);
    const mode = this.mode === "versionchange" ? "versionchange" : "readwrite";
    void committer.committed({ database, mode, changes }).then(() => dispatch.call(this, event));
    return true;
  };
}

/** The stores a transaction could write: its scope, or every store for a versionchange. */
function storesOf(tx: FakeTransaction, database: RawDatabase): RawObjectStore[] {
  if (tx.mode === "versionchange") return [...database.rawObjectStores.values()];
  return [...tx._scope].flatMap((name) => {
    const store = database.rawObjectStores.get(name);
    return store === undefined ? [] : [store];
  });
}

function changesOf(store: RawObjectStore): StoreChanges {
  let changes = pending.get(store);
  if (changes === undefined) pending.set(store, (changes = { cleared: false, keys: [] }));
  return changes;
}

/**
 * fake-indexeddb does not export its raw ObjectStore class: reach its prototype through a
 * store of a throwaway database.
 */
async function rawObjectStorePrototype(): Promise<Record<string, unknown>> {
  const factory = new fakeIndexedDb.IDBFactory() as {
    open(
      name: string,
      version: number,
    ): {
      onupgradeneeded: (() => void) | null;
      onsuccess: (() => void) | null;
      onerror: (() => void) | null;
      error: unknown;
      result: {
        createObjectStore(name: string): unknown;
        close(): void;
        _rawDatabase: RawDatabase;
      };
    };
  };
  const db = await new Promise<ReturnType<typeof factory.open>["result"]>((resolve, reject) => {
    const request = factory.open("probe", 1);
    request.onupgradeneeded = () => void request.result.createObjectStore("probe");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () =>
      reject(new Error(`fake-indexeddb: cannot open a probe database: ${String(request.error)}`));
  });
  const raw = db._rawDatabase.rawObjectStores.get("probe");
  db.close();
  const proto = raw === undefined ? undefined : (Object.getPrototypeOf(raw) as Record<string, unknown>);
  for (const method of ["storeRecord", "deleteRecord", "clear"]) {
    if (typeof proto?.[method] !== "function")
      throw new Error(
        `fake-indexeddb: its object stores have no ${method}(); the crypto store's mirror needs the pinned version (see package.json)`,
      );
  }
  return proto!;
}
