export type { KeyValue, Store, StoreBackend } from "./store.js";
export { openStore, describeStoreUrl, sqlitePath, type OpenStoreOptions } from "./open-store.js";
export { StoreError } from "./store-error.js";
export type { JsonValue } from "./json.js";
export { GhostStore, type GhostProfile, type GhostRecord } from "./ghost-store.js";
export { PortalStore, MAX_PORTAL_METADATA_BYTES, type PortalRecord } from "./portal-store.js";
export { MessageMap, type MessageLink, type MessageMapOptions } from "./message-map.js";
export { Outbox, OutboxFullError, type OutboxItem, type OutboxOptions } from "./outbox.js";
export { AdapterKV } from "./adapter-kv.js";
export {
  migrateStore,
  STORE_AREAS,
  StoreSchemaError,
  type StoreArea,
  type Migration,
} from "./schema-versions.js";
export {
  acquireWriterLease,
  fencedStore,
  LeaseHeldError,
  DEFAULT_LEASE_TTL_MS,
  type WriterLease,
  type LeaseOptions,
} from "./lease.js";
