import { createHash } from "node:crypto";

/**
 * The longest stored key, in UTF-8 bytes. PostgreSQL's table (created by @keyv/postgres)
 * holds keys of at most 255 characters; Matrix room and event ids alone may be 255 bytes.
 */
export const MAX_STORED_KEY_BYTES = 200;

/**
 * The key one value is stored under: `prefix:namespace:key`, or, when that would be longer
 * than MAX_STORED_KEY_BYTES, `prefix:namespace#<sha256 of key>`. Namespace names cannot
 * contain `#` or `:`, so a hashed key never collides with a plain one. Pure; no I/O.
 */
export function storageKey(prefix: string, namespace: string, key: string): string {
  const plain = `${prefix}:${namespace}:${key}`;
  if (Buffer.byteLength(plain, "utf8") <= MAX_STORED_KEY_BYTES) return plain;
  return `${prefix}:${namespace}#${createHash("sha256").update(key, "utf8").digest("hex")}`;
}

/** Store prefixes: 1-64 of letters, digits, `_`, `.`, `-`, starting with a letter or digit. */
export const PREFIX_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Namespace names: 1-64 of letters, digits, `_`, `.`, `-`, starting with a letter. */
export const NAMESPACE_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
