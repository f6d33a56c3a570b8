import type {
  DeviceKeyCounts,
  DeviceLists,
  EphemeralEvent,
  MatrixEvent,
  ToDeviceMessage,
} from "../matrix/events.js";
import { badJson } from "./errors.js";

/** A validated transaction, every spelling resolved to one field. */
export interface ParsedTransaction {
  events: MatrixEvent[];
  ephemeral: EphemeralEvent[];
  toDevice: ToDeviceMessage[];
  deviceLists: DeviceLists | undefined;
  /** Undefined when the transaction carried neither counts nor fallback key types. */
  keyCounts: DeviceKeyCounts | undefined;
}

const EPHEMERAL_KEYS = ["ephemeral", "de.sorunome.msc2409.ephemeral"];
const TO_DEVICE_KEYS = ["to_device", "de.sorunome.msc2409.to_device"];
const DEVICE_LISTS_KEYS = ["device_lists", "org.matrix.msc3202.device_lists"];
const OTK_COUNT_KEYS = [
  "device_one_time_keys_count",
  "org.matrix.msc3202.device_one_time_keys_count",
  // Synapse has sent this misspelt twin alongside the one above.
  "org.matrix.msc3202.device_one_time_key_counts",
];
const FALLBACK_KEYS = [
  "device_unused_fallback_key_types",
  "org.matrix.msc3202.device_unused_fallback_key_types",
];

const EVENT_STRING_KEYS = ["event_id", "room_id", "type", "sender"] as const;

/**
 * Validates a parsed `PUT /transactions` body. Pure, no I/O. Throws a 400 `M_BAD_JSON`
 * naming the key (and event index) that was wrong; never echoes values.
 *
 * When a stable and an unstable spelling are both present, the first present spelling in
 * the order stable, unstable wins and the other is ignored, so nothing is delivered twice.
 */
export function parseTransactionBody(body: unknown): ParsedTransaction {
  if (!isObject(body)) throw badJson("the body must be a JSON object");
  if (!("events" in body)) throw badJson("events: required");
  const events = body.events;
  if (!Array.isArray(events)) throw badJson("events: must be an array");
  events.forEach((event, i) => validateEvent(event, i));

  const ephemeral = pickArray(body, EPHEMERAL_KEYS);
  ephemeral.value.forEach((e, i) => requireTypedObject(e, `${ephemeral.key}[${i}]`));
  const toDevice = pickArray(body, TO_DEVICE_KEYS);
  toDevice.value.forEach((e, i) => requireTypedObject(e, `${toDevice.key}[${i}]`));

  return {
    events: events as MatrixEvent[],
    ephemeral: ephemeral.value as EphemeralEvent[],
    toDevice: toDevice.value as ToDeviceMessage[],
    deviceLists: pickDeviceLists(body),
    keyCounts: pickKeyCounts(body),
  };
}

function validateEvent(event: unknown, i: number): void {
  if (!isObject(event)) throw badJson(`events[${i}]: must be an object`);
  for (const key of EVENT_STRING_KEYS) {
    if (typeof event[key] !== "string" || event[key] === "") {
      throw badJson(`events[${i}].${key}: must be a non-empty string`);
    }
  }
  if (!isObject(event.content)) throw badJson(`events[${i}].content: must be an object`);
  if ("state_key" in event && typeof event.state_key !== "string") {
    throw badJson(`events[${i}].state_key: must be a string when present`);
  }
  if ("origin_server_ts" in event && typeof event.origin_server_ts !== "number") {
    throw badJson(`events[${i}].origin_server_ts: must be a number when present`);
  }
}

function requireTypedObject(value: unknown, where: string): void {
  if (!isObject(value)) throw badJson(`${where}: must be an object`);
  if (typeof value.type !== "string") throw badJson(`${where}.type: must be a string`);
}

function pickArray(body: Record<string, unknown>, keys: string[]): { key: string; value: unknown[] } {
  for (const key of keys) {
    if (body[key] === undefined || body[key] === null) continue;
    if (!Array.isArray(body[key])) throw badJson(`${key}: must be an array`);
    return { key, value: body[key] };
  }
  return { key: keys[0]!, value: [] };
}

function pickObject(body: Record<string, unknown>, keys: string[]): Record<string, unknown> | undefined {
  for (const key of keys) {
    if (body[key] === undefined || body[key] === null) continue;
    if (!isObject(body[key])) throw badJson(`${key}: must be an object`);
    return body[key];
  }
  return undefined;
}

function pickDeviceLists(body: Record<string, unknown>): DeviceLists | undefined {
  const key = DEVICE_LISTS_KEYS.find((k) => body[k] !== undefined && body[k] !== null);
  if (key === undefined) return undefined;
  const lists = pickObject(body, [key])!;
  const result: DeviceLists = { changed: [], left: [] };
  for (const field of ["changed", "left"] as const) {
    const value = lists[field];
    if (value === undefined) continue;
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
      throw badJson(`${key}.${field}: must be an array of strings`);
    }
    result[field] = value as string[];
  }
  return result.changed.length === 0 && result.left.length === 0 ? undefined : result;
}

function pickKeyCounts(body: Record<string, unknown>): DeviceKeyCounts | undefined {
  const counts = pickObject(body, OTK_COUNT_KEYS);
  const fallback = pickObject(body, FALLBACK_KEYS);
  const empty = (o: Record<string, unknown> | undefined) => o === undefined || Object.keys(o).length === 0;
  if (empty(counts) && empty(fallback)) return undefined;
  return {
    oneTimeKeysCount: (counts ?? {}) as DeviceKeyCounts["oneTimeKeysCount"],
    unusedFallbackKeyTypes: (fallback ?? {}) as DeviceKeyCounts["unusedFallbackKeyTypes"],
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
