/** A value that survives a JSON round trip, as the store keeps it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * Throws a TypeError naming `what` when `value` is larger than `maxBytes` once JSON-encoded
 * (UTF-8). Used to keep "small" metadata small. Pure; no I/O.
 */
export function assertJsonSize(what: string, value: unknown, maxBytes: number): void {
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? "", "utf8");
  if (bytes > maxBytes)
    throw new TypeError(`${what} is ${bytes} bytes as JSON; at most ${maxBytes} are allowed`);
}
