// Fault injection for store tests: a Store whose operations on one namespace reject.
import type { KeyValue, Store } from "../../src/store/index.js";

export type KeyValueOp = keyof KeyValue<unknown>;

/** Every operation that changes data. */
export const WRITE_OPS: readonly KeyValueOp[] = ["set", "setMany", "delete", "deleteMany"];

/**
 * `store`, except that the operations `ops` on the namespace `name` reject with `error()`
 * (the backend refusing, or a crash just before that write); everything else goes through.
 */
export function failingNamespace(
  store: Store,
  name: string,
  ops: readonly KeyValueOp[],
  error: () => Error,
): Store {
  return {
    description: store.description,
    backend: store.backend,
    prefix: store.prefix,
    close: () => store.close(),
    namespace<V>(namespace: string): KeyValue<V> {
      const kv = store.namespace<V>(namespace);
      if (namespace !== name) return kv;
      const fails = (op: KeyValueOp) => ops.includes(op);
      const reject = () => Promise.reject(error());
      return {
        get: (key) => (fails("get") ? reject() : kv.get(key)),
        getMany: (keys) => (fails("getMany") ? reject() : kv.getMany(keys)),
        set: (key, value, ttlMs) => (fails("set") ? reject() : kv.set(key, value, ttlMs)),
        setMany: (entries) => (fails("setMany") ? reject() : kv.setMany(entries)),
        delete: (key) => (fails("delete") ? reject() : kv.delete(key)),
        deleteMany: (keys) => (fails("deleteMany") ? reject() : kv.deleteMany(keys)),
        has: (key) => (fails("has") ? reject() : kv.has(key)),
      };
    },
  };
}
