/**
 * How IndexedDB keys and values are written into the bridge's store (JSON strings). Pure.
 *
 * Keys get a canonical text form, so one key always has one record id whatever its
 * in-memory representation; values (any structured-clonable value: the Rust store writes
 * objects, arrays, numbers, booleans and strings) are V8's structured-clone serialization in
 * base64, a format Node documents as readable by later versions.
 */
import { createHash } from "node:crypto";
import { deserialize, serialize } from "node:v8";
import type { IdbKey } from "./fake-indexeddb.js";

/** A key in text: `n:<number>`, `s:<JSON string>`, `d:<ms>`, `b:<hex>`, `a:[<key>,...]` (JSON array of encoded keys). */
export function encodeKey(key: IdbKey): string {
  if (typeof key === "number") return `n:${Object.is(key, -0) ? "0" : String(key)}`;
  if (typeof key === "string") return `s:${JSON.stringify(key)}`;
  if (key instanceof Date) return `d:${key.getTime()}`;
  if (key instanceof ArrayBuffer) return `b:${Buffer.from(key).toString("hex")}`;
  if (ArrayBuffer.isView(key))
    return `b:${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex")}`;
  if (Array.isArray(key)) return `a:${JSON.stringify(key.map(encodeKey))}`;
  throw new TypeError(`crypto store: an IndexedDB key of type ${typeof key} cannot be stored`);
}

/** The key `encodeKey` wrote (binary keys come back as ArrayBuffers, as IndexedDB returns them). */
export function decodeKey(text: string): IdbKey {
  const body = text.slice(2);
  switch (text.slice(0, 2)) {
    case "n:":
      return Number(body);
    case "s:":
      return JSON.parse(body) as string;
    case "d:":
      return new Date(Number(body));
    case "b:": {
      const bytes = Buffer.from(body, "hex");
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    }
    case "a:":
      return (JSON.parse(body) as string[]).map(decodeKey);
  }
  throw new TypeError(`crypto store: a stored key is damaged (${JSON.stringify(text.slice(0, 20))}…)`);
}

export function encodeValue(value: unknown): string {
  return serialize(value).toString("base64");
}

export function decodeValue(text: string): unknown {
  return deserialize(Buffer.from(text, "base64"));
}

/** A short stable id for a text (22 characters of base64url SHA-256). */
export function shortId(text: string): string {
  return createHash("sha256").update(text).digest("base64url").slice(0, 22);
}
