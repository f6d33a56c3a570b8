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
  /** Stores a value; with ttlMs, it reads as absent once that many milliseconds have passed. */
  set(key: string, value: V, ttlMs?: number): Promise<void>;
  /** Removes a key; returns true if it existed. */
  delete(key: string): Promise<boolean>;
  has(key: string): Promise<boolean>;
}

export interface Store {
  /** The store's URL with any password masked, for logs and errors. */
  readonly description: string;
  /**
   * A namespace: keys in one namespace never collide with keys in another. Names are short
   * identifiers such as "journal" or "ghosts"; the same name always gives the same data.
   */
  namespace<V>(name: string): KeyValue<V>;
  /** Closes connections. Pending writes finish first. */
  close(): Promise<void>;
}
