import type { BridgeConfig } from "../config/types.js";
import { silentLogger } from "../common/logger.js";
import { openStore } from "../store/open-store.js";
import { acquireWriterLease, fencedStore, type WriterLease } from "../store/lease.js";
import { migrateStore, STORE_AREAS } from "../store/schema-versions.js";
import type { Store } from "../store/store.js";

/** The bridge's store, opened by an operator command while the bridge is stopped. */
export interface StoreAccess {
  /** Writes go through the writer lease (when `writes`): a running bridge is never raced. */
  readonly store: Store;
  /** Names the store for the output (never its password). */
  readonly description: string;
  /** Releases the lease (if taken) and closes the store. */
  close(): Promise<void>;
}

/**
 * Opens the configured store for an operator command. It checks the store's schema version
 * without migrating it; to change anything (`writes`) it takes the store's writer lease, so a
 * bridge running elsewhere on the same store (another host or port) is never raced: then it
 * throws a LeaseHeldError naming the store.
 */
export async function openStoreForCli(config: BridgeConfig, writes: boolean): Promise<StoreAccess> {
  const raw = await openStore(config.store, { baseDir: config.configDir });
  let lease: WriterLease | undefined;
  const close = async () => {
    await lease?.release();
    await raw.close();
  };
  try {
    await migrateStore(raw, silentLogger(), STORE_AREAS, { checkOnly: true });
    if (writes)
      lease = await acquireWriterLease(config.store, raw, {
        prefix: raw.prefix,
        ttlMs: config.lease.ttlMs,
        baseDir: config.configDir,
      });
  } catch (err) {
    await close();
    throw err;
  }
  return { store: fencedStore(raw, () => lease), description: raw.description, close };
}
