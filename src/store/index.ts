export type { KeyValue, Store, StoreBackend } from "./store.js";
export { openStore, describeStoreUrl, sqlitePath, type OpenStoreOptions } from "./open-store.js";
export { StoreError } from "./store-error.js";
