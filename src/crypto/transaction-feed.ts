/**
 * What of a transaction's end-to-end encryption data concerns one device (MSC2409 to-device
 * messages, MSC3202 device lists and key counts; src/appservice/transaction-body.ts resolved
 * their stable and unstable spellings), in the shapes the crypto machine takes. Pure.
 */
import type { DeviceKeyCounts, ToDeviceMessage } from "../matrix/events.js";

/** A device of one of our users. */
export interface DeviceTarget {
  userId: string;
  deviceId: string;
}

/** A to-device event as a client's /sync gives it: the recipient fields dropped. */
export interface SyncToDeviceEvent {
  type: string;
  sender: string;
  content: Record<string, unknown>;
}

/**
 * The to-device messages addressed to `device` (a message to `*`, all of the user's devices,
 * included), as /sync would give them, in order.
 */
export function toDeviceFor(messages: readonly ToDeviceMessage[], device: DeviceTarget): SyncToDeviceEvent[] {
  return messages
    .filter(
      (m) => m.to_user_id === device.userId && (m.to_device_id === device.deviceId || m.to_device_id === "*"),
    )
    .map(({ to_user_id: _user, to_device_id: _device, ...event }) => event as SyncToDeviceEvent);
}

/**
 * The device's one-time-key counts (algorithm -> count) and unused fallback key types, or
 * undefined for what the transaction did not say about this device ("unchanged").
 */
export function keyCountsFor(
  counts: DeviceKeyCounts,
  device: DeviceTarget,
): { oneTimeKeys: Map<string, number> | undefined; fallbackKeyTypes: Set<string> | undefined } {
  const otk = counts.oneTimeKeysCount[device.userId]?.[device.deviceId];
  const fallback = counts.unusedFallbackKeyTypes[device.userId]?.[device.deviceId];
  return {
    oneTimeKeys:
      otk === undefined
        ? undefined
        : new Map(
            Object.entries(otk).filter((e): e is [string, number] => Number.isInteger(e[1]) && e[1] >= 0),
          ),
    fallbackKeyTypes: Array.isArray(fallback)
      ? new Set(fallback.filter((t): t is string => typeof t === "string"))
      : undefined,
  };
}
