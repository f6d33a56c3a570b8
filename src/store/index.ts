export type { KeyValue, Store } from "./store.js";
export { openStore, describeStoreUrl, sqlitePath, type OpenStoreOptions } from "./open-store.js";
