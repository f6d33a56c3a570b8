import { scryptSync } from "node:crypto";
import { envVarName } from "../config/env.js";

/** Where the key comes from, for errors: the config key and its environment variable. */
export const PICKLE_KEY_SOURCE = `encryption.pickleKey (env ${envVarName("encryption.pickleKey")})`;

/** Fixed, purpose-named: the same key string derives the same store key in every bridge. */
const SALT = "matrix-bridgekit crypto store v1";
/** scrypt cost as for logins.encryptionKey: about 0.1 s of one core, once per process. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const MIN_KEY_CHARS = 16;

/**
 * The 32-byte key the crypto store is opened with (`StoreHandle.openWithKey`: the Rust
 * store encrypts every value and hashes every key with it), derived from the configured
 * pickle key (a passphrase or base64 randomness, 16+ characters) with scrypt. Throws naming
 * the config key, never echoing the key. Losing or changing it makes the stored crypto
 * state unreadable: the bridge then refuses to start rather than make a new identity.
 */
export function derivePickleKey(pickleKey: string): Uint8Array {
  if (typeof pickleKey !== "string" || pickleKey.trim().length < MIN_KEY_CHARS)
    throw new Error(`${PICKLE_KEY_SOURCE} must be at least ${MIN_KEY_CHARS} characters`);
  return new Uint8Array(scryptSync(pickleKey, SALT, 32, SCRYPT));
}
