import type { JsonValue } from "./json.js";
import type { KeyValue, Store } from "./store.js";

/**
 * The adapter's own persistent key-value space: one Store namespace ("adapter" unless
 * named), typed by a schema of key -> value type, e.g.
 * `new AdapterKV<{ cursor: string; seen: number[] }>(store)`.
 * Values are JSON; with ttlMs a value reads as absent after that long.
 */
export class AdapterKV<Schema extends Record<string, JsonValue> = Record<string, JsonValue>> {
  private readonly kv: KeyValue<JsonValue>;

  constructor(store: Store, namespace = "adapter") {
    this.kv = store.namespace<JsonValue>(namespace);
  }

  async get<K extends keyof Schema & string>(key: K): Promise<Schema[K] | undefined> {
    return (await this.kv.get(key)) as Schema[K] | undefined;
  }

  /** Resolves once the backend accepted the write. */
  async set<K extends keyof Schema & string>(key: K, value: Schema[K], ttlMs?: number): Promise<void> {
    await this.kv.set(key, value, ttlMs);
  }

  /** Returns true if the key existed. */
  async delete<K extends keyof Schema & string>(key: K): Promise<boolean> {
    return this.kv.delete(key);
  }

  async has<K extends keyof Schema & string>(key: K): Promise<boolean> {
    return this.kv.has(key);
  }
}
