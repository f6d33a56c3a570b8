// A homeserver's end-to-end key and to-device endpoints in memory, for crypto unit tests:
// keys/upload, keys/query, keys/claim, sendToDevice, and MSC4190's PUT /devices. Answers as
// Synapse would, enough for two OlmMachines to set up Olm and Megolm sessions.
import type { ToDeviceMessage } from "../../src/matrix/events.js";

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access -- JSON bodies of a fake server */
export type Json = Record<string, any>;

export class FakeKeyServer {
  readonly devices = new Map<string, Json>(); // "user|device" -> device_keys
  readonly oneTimeKeys = new Map<string, Array<[string, Json]>>();
  readonly fallbackKeys = new Map<string, Json>();
  /** To-device messages waiting, in the shape an appservice transaction carries them. */
  readonly toDevice: ToDeviceMessage[] = [];
  readonly created: string[] = [];
  readonly calls: string[] = [];

  /** The client the CryptoMachine takes. */
  client = {
    putDevice: (userId: string, deviceId: string): Promise<void> => {
      this.created.push(`${userId}|${deviceId}`);
      return Promise.resolve();
    },
    callAsDevice: <T>(
      method: string,
      path: string,
      device: { userId: string; deviceId: string },
      body: unknown,
    ): Promise<T> => Promise.resolve(this.handle(method, path, device, body as Json) as T),
  };

  handle(method: string, path: string, device: { userId: string; deviceId: string }, body: Json): Json {
    const route = path.replace(/^\/_matrix\/client\/v3/, "");
    this.calls.push(`${method} ${route.split("/").slice(0, 3).join("/")}`);
    const id = `${device.userId}|${device.deviceId}`;
    if (route === "/keys/upload") {
      if (body.device_keys) this.devices.set(id, body.device_keys as Json);
      const otks = this.oneTimeKeys.get(id) ?? [];
      for (const [keyId, key] of Object.entries((body.one_time_keys ?? {}) as Json))
        otks.push([keyId, key as Json]);
      this.oneTimeKeys.set(id, otks);
      for (const [keyId, key] of Object.entries((body.fallback_keys ?? {}) as Json))
        this.fallbackKeys.set(id, { [keyId]: key });
      return { one_time_key_counts: { signed_curve25519: otks.length } };
    }
    if (route === "/keys/query") {
      const deviceKeys: Json = {};
      for (const user of Object.keys(body.device_keys as Json)) {
        deviceKeys[user] = {};
        for (const [key, keys] of this.devices)
          if (key.startsWith(`${user}|`)) deviceKeys[user][key.split("|")[1]!] = keys;
      }
      return { device_keys: deviceKeys, failures: {} };
    }
    if (route === "/keys/claim") {
      const claimed: Json = {};
      for (const [user, devices] of Object.entries(body.one_time_keys as Json)) {
        claimed[user] = {};
        for (const deviceId of Object.keys(devices as Json)) {
          const key = this.oneTimeKeys.get(`${user}|${deviceId}`)?.shift();
          const chosen = key ? { [key[0]]: key[1] } : this.fallbackKeys.get(`${user}|${deviceId}`);
          if (chosen) claimed[user][deviceId] = chosen;
        }
      }
      return { one_time_keys: claimed, failures: {} };
    }
    const send = /^\/sendToDevice\/([^/]+)\//.exec(route);
    if (send) {
      for (const [user, devices] of Object.entries(body.messages as Json))
        for (const [deviceId, content] of Object.entries(devices as Json))
          this.toDevice.push({
            type: decodeURIComponent(send[1]!),
            sender: device.userId,
            to_user_id: user,
            to_device_id: deviceId,
            content: content as Json,
          });
      return {};
    }
    if (route === "/keys/signatures/upload") return { failures: {} };
    throw new Error(`fake key server: ${method} ${path} is not served`);
  }

  /** The to-device messages waiting, taken. */
  take(): ToDeviceMessage[] {
    return this.toDevice.splice(0);
  }
}
