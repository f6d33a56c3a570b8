import type { KeyValue, Store } from "../../src/store/index.js";

/**
 * Wraps a Store so every operation is counted by "namespace op" (e.g. "journal-event set"):
 * how many store round trips one ingested event costs. Used only in profiling runs.
 */
export class StoreOpCounter {
  readonly counts = new Map<string, number>();

  wrap(inner: Store): Store {
    const bump = (key: string) => this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    return {
      description: inner.description,
      backend: inner.backend,
      prefix: inner.prefix,
      namespace<V>(name: string): KeyValue<V> {
        const kv = inner.namespace<V>(name);
        return {
          get: (k) => (bump(`${name} get`), kv.get(k)),
          getMany: (ks) => (bump(`${name} getMany`), kv.getMany(ks)),
          set: (k, v, ttl) => (bump(`${name} set`), kv.set(k, v, ttl)),
          setMany: (es) => (bump(`${name} setMany`), kv.setMany(es)),
          delete: (k) => (bump(`${name} delete`), kv.delete(k)),
          deleteMany: (ks) => (bump(`${name} deleteMany`), kv.deleteMany(ks)),
          has: (k) => (bump(`${name} has`), kv.has(k)),
        };
      },
      close: () => inner.close(),
    };
  }

  /** The counts so far, and forgets them. */
  take(): Record<string, number> {
    const out = Object.fromEntries([...this.counts].sort((a, b) => b[1] - a[1]));
    this.counts.clear();
    return out;
  }
}
