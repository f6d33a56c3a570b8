/** Argument checks made before any I/O, with errors that name the argument and value. */

/** Rejects a `ts` that is not a non-negative integer (ms since the epoch), before any I/O. */
export function checkTs(ts: unknown): void {
  if (ts === undefined) return;
  if (typeof ts !== "number" || !Number.isSafeInteger(ts) || ts < 0) {
    throw new TypeError(
      `ts must be a non-negative integer of milliseconds since the epoch, got ${describe(ts)}`,
    );
  }
}

export function positive(name: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === "string") return `"${value}"`;
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return `${value}`;
  return JSON.stringify(value) ?? typeof value;
}
