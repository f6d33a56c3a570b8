import type Keyv from "keyv";
import type { KeyValue, Store, StoreBackend } from "./store.js";
import { StoreError } from "./store-error.js";
import { NAMESPACE_PATTERN, storageKey } from "./storage-key.js";

/** Argument errors raised here, already worded for the caller: passed through unwrapped. */
const ownErrors = new WeakSet<Error>();
function own(err: Error): Error {
  ownErrors.add(err);
  return err;
}

/**
 * A Store over one Keyv instance (one connection pool). Every namespace shares it; keys are
 * composed here (`prefix:namespace:key`), so Keyv's own namespacing is off. Every operation
 * is tracked so close() can wait for it; errors become StoreErrors naming the operation.
 */
export class KeyvStore implements Store {
  private readonly pending = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly keyv: Keyv,
    readonly description: string,
    readonly backend: StoreBackend,
    readonly prefix: string,
    /** Strings to mask in backend error messages (the raw URL, which may hold a password). */
    private readonly secrets: readonly string[] = [],
  ) {}

  namespace<V>(name: string): KeyValue<V> {
    if (typeof name !== "string" || !NAMESPACE_PATTERN.test(name))
      throw new TypeError(
        `store namespace ${JSON.stringify(name)} is not an identifier (letters, digits, _ . -, at most 64)`,
      );
    const keyv = this.keyv;
    const key = (op: string, k: unknown): string => {
      if (typeof k !== "string" || k === "")
        throw own(new TypeError(`store ${this.description}: ${op} ${name}: key must be a non-empty string`));
      return storageKey(this.prefix, name, k);
    };
    // JSON null round-trips as null; only an absent (or expired) key reads as undefined.
    const get = async (k: string): Promise<V | undefined> => keyv.get<V>(key("get", k));
    return {
      get: (k) => this.run("get", name, k, () => get(k)),
      getMany: (keys) =>
        this.run("getMany", name, `${keys.length} keys`, async () => {
          if (keys.length === 0) return [];
          const values = (await keyv.get<V>(keys.map((k) => key("getMany", k)))) as Array<V | undefined>;
          return values;
        }),
      set: (k, value, ttlMs) =>
        this.run("set", name, k, async () => {
          const stored = key("set", k);
          if (value === undefined)
            throw own(
              new TypeError(`store ${this.description}: set ${name}:${k}: value is undefined; use delete`),
            );
          if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0))
            throw own(
              new RangeError(
                `store ${this.description}: set ${name}:${k}: ttlMs must be a positive number, got ${ttlMs}`,
              ),
            );
          const ok = await keyv.set(stored, value, ttlMs === undefined ? undefined : Math.ceil(ttlMs));
          if (!ok) throw new StoreError(this.description, `set ${name}:${k}: the backend refused the write`);
        }),
      setMany: (entries) =>
        this.run("setMany", name, `${entries.length} keys`, async () => {
          // Last value wins for a repeated key (PostgreSQL refuses to upsert a row twice).
          const last = new Map<string, V>();
          for (const [k, value] of entries) {
            if (value === undefined)
              throw own(
                new TypeError(
                  `store ${this.description}: setMany ${name}:${k}: value is undefined; use delete`,
                ),
              );
            last.set(key("setMany", k), value);
          }
          if (last.size === 0) return;
          // Errors throw (throwOnErrors); some adapters return no per-key results at all.
          const results: unknown = await keyv.setMany([...last].map(([k, value]) => ({ key: k, value })));
          if (Array.isArray(results) && results.some((ok) => ok === false))
            throw new StoreError(this.description, `setMany ${name}: the backend refused the write`);
        }),
      delete: (k) => this.run("delete", name, k, () => keyv.delete(key("delete", k))),
      deleteMany: (keys) =>
        this.run("deleteMany", name, `${keys.length} keys`, async () => {
          const stored = [...new Set(keys.map((k) => key("deleteMany", k)))];
          if (stored.length > 0) await keyv.delete(stored);
        }),
      // Not keyv.has(): on sqlite and PostgreSQL that asks the table and reports expired keys.
      has: (k) => this.run("has", name, k, async () => (await get(k)) !== undefined),
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.pending]);
      try {
        await this.keyv.disconnect();
      } catch (err) {
        throw this.wrap("close", "", "", err);
      }
    })();
    return this.closing;
  }

  /** Runs one operation: refused once closing, tracked until settled, errors wrapped. */
  private run<T>(op: string, ns: string, key: string, fn: () => Promise<T>): Promise<T> {
    if (this.closing)
      return Promise.reject(new StoreError(this.description, `${op} ${ns}:${key}: the store is closed`));
    const p = fn().catch((err: unknown) => {
      throw this.wrap(op, ns, key, err);
    });
    this.pending.add(p);
    const forget = () => void this.pending.delete(p);
    p.then(forget, forget);
    return p;
  }

  private wrap(op: string, ns: string, key: string, err: unknown): Error {
    if (err instanceof StoreError || (err instanceof Error && ownErrors.has(err))) return err;
    let message = err instanceof Error ? err.message : String(err);
    for (const secret of this.secrets) if (secret) message = message.split(secret).join(this.description);
    const what = ns === "" ? op : `${op} ${ns}:${key}`;
    return new StoreError(this.description, `${what} failed: ${message}`, { cause: err });
  }
}
