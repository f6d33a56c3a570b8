import type { StoreHandle } from "@matrix-org/matrix-sdk-crypto-wasm";
import type { Logger } from "../common/logger.js";
import type { JsonValue } from "../store/json.js";
import type { Store } from "../store/store.js";
import { newIndexedDb } from "./fake-indexeddb.js";
import { IdbMirror } from "./idb-mirror.js";
import { loadCryptoSdk } from "./sdk.js";

/** The store namespace crypto state lives in. */
export const CRYPTO_NAMESPACE = "crypto";

/** One durable crypto store: the handle the OlmMachine opens, and its mirror. */
export interface CryptoStore {
  readonly handle: StoreHandle;
  readonly mirror: IdbMirror;
  /** Stops mirroring once what is queued is written; frees the handle. */
  close(): Promise<void>;
}

/**
 * Opens the crypto store `name` ("bot" for the bot's device) of the bridge's store: a fresh
 * in-memory IndexedDB filled from the store (IdbMirror.load), then the Rust store opened in
 * it with `key` (32 bytes, see derivePickleKey). Rejects naming the store when the state
 * cannot be read, or when the key is not the one it was written with.
 */
export async function openCryptoStore(
  store: Store,
  name: string,
  key: Uint8Array,
  log: Logger,
): Promise<CryptoStore> {
  const sdk = await loadCryptoSdk();
  const factory = await newIndexedDb();
  const mirror = await IdbMirror.load(store.namespace<JsonValue>(CRYPTO_NAMESPACE), name, factory, log);
  let handle: StoreHandle;
  try {
    handle = await sdk.StoreHandle.openWithKey(name, key);
  } catch (err) {
    await mirror.close();
    throw new Error(
      `cannot open the crypto store "${name}" in ${store.description} (is encryption.pickleKey the one it was written with?): ${errorText(err)}`,
      { cause: err },
    );
  }
  await mirror.settled();
  return {
    handle,
    mirror,
    async close() {
      await mirror.close();
      handle.free();
    },
  };
}

/** The Rust bindings throw plain strings or Errors. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
