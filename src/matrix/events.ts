/**
 * The shapes of what a homeserver pushes. Only fields the framework relies on are typed;
 * everything else stays reachable through the index signatures.
 */

/** A room event (message or state) as pushed in a transaction's `events`. */
export interface MatrixEvent {
  event_id: string;
  type: string;
  room_id: string;
  sender: string;
  origin_server_ts: number;
  content: Record<string, unknown>;
  /** Present (possibly "") on state events, absent on message events. */
  state_key?: string;
  unsigned?: Record<string, unknown>;
  [key: string]: unknown;
}

/** A state event: any event with a state_key. */
export type MatrixStateEvent = MatrixEvent & { state_key: string };

/** Typing, receipts, presence: pushed in `ephemeral` (or `de.sorunome.msc2409.ephemeral`). */
export interface EphemeralEvent {
  type: string;
  room_id?: string;
  content: Record<string, unknown>;
  [key: string]: unknown;
}

/** A to-device message (`de.sorunome.msc2409.to_device` / `to_device`). */
export interface ToDeviceMessage {
  type: string;
  sender: string;
  to_user_id: string;
  to_device_id: string;
  content: Record<string, unknown>;
  [key: string]: unknown;
}

/** `org.matrix.msc3202.device_lists` / `device_lists`. */
export interface DeviceLists {
  changed: string[];
  left: string[];
}

export function isStateEvent(event: MatrixEvent): event is MatrixStateEvent {
  return typeof event.state_key === "string";
}

/** The server name of a user id, alias or room id (`@a:example.org:8448` -> `example.org:8448`). */
export function serverName(id: string): string {
  const colon = id.indexOf(":");
  return colon < 0 ? "" : id.slice(colon + 1);
}

/** The localpart of a user id or alias (`@alice:example.org` -> `alice`). */
export function localpart(id: string): string {
  const colon = id.indexOf(":");
  return id.slice(1, colon < 0 ? undefined : colon);
}

/** One-time-key counts and unused fallback key types, per user and device (MSC3202). */
export interface DeviceKeyCounts {
  /** `{userId: {deviceId: {algorithm: count}}}`; empty if the transaction carried none. */
  oneTimeKeysCount: Record<string, Record<string, Record<string, number>>>;
  /** `{userId: {deviceId: [algorithm]}}`; empty if the transaction carried none. */
  unusedFallbackKeyTypes: Record<string, Record<string, string[]>>;
}
