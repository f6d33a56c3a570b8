/**
 * The persistence seam. Every durable thing the framework keeps (the transaction journal,
 * ghosts, portals, message ids, the outbox, the adapter's own space) is a namespace of one
 * Store. Implementations must surface every storage error as a rejected promise: a write
 * that silently failed would acknowledge an event that was never recorded.
 */

/** One namespace of a Store: string keys, JSON-serialisable values. */
export interface KeyValue<V> {
  /** The value, or undefined if absent or expired. */
  get(key: string): Promise<V | undefined>;
  /** The values of several keys, in the same order; undefined where absent. */
  getMany(keys: readonly string[]): Promise<Array<V | undefined>>;
  /**
   * Stores a value (JSON: objects, arrays, strings, numbers, booleans, null; undefined is
   * refused); with ttlMs (> 0), it reads as absent once that many milliseconds have passed.
   * Resolves only after the backend accepted the write.
   */
  set(key: string, value: V, ttlMs?: number): Promise<void>;
  /**
   * Stores several values (no ttl) at once: one transaction on sqlite, one statement on
   * PostgreSQL, one MULTI on Redis, so all of them or none are written. A key given twice
   * keeps its last value. Resolves only after the backend accepted the write.
   */
  setMany(entries: ReadonlyArray<readonly [key: string, value: V]>): Promise<void>;
  /** Removes a key; returns true if it existed. */
  delete(key: string): Promise<boolean>;
  /** Removes several keys in one round trip (absent keys are ignored). */
  deleteMany(keys: readonly string[]): Promise<void>;
  has(key: string): Promise<boolean>;
}

/** Which kind of database a Store is backed by. */
export type StoreBackend = "memory" | "sqlite" | "postgres" | "redis";

export interface Store {
  /** The store's URL with any password masked, for logs and errors. */
  readonly description: string;
  /** The kind of database behind it. */
  readonly backend: StoreBackend;
  /** The prefix of every key this Store writes (default "bridgekit"); see OpenStoreOptions.prefix. */
  readonly prefix: string;
  /**
   * A namespace: keys in one namespace never collide with keys in another. Names are short
   * identifiers such as "journal" or "ghosts"; the same name always gives the same data.
   */
  namespace<V>(name: string): KeyValue<V>;
  /**
   * Closes connections. Operations already started finish first (their promises settle as
   * usual); operations started after close() reject with a StoreError saying the store is
   * closed. Idempotent: every call returns the same promise.
   */
  close(): Promise<void>;
}
