import { randomBytes } from "node:crypto";
import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import type { ServerEndpoints } from "../client/server-endpoints.js";
import type { Logger } from "../common/logger.js";
import type { DeviceKeyCounts, DeviceLists, MatrixEvent, ToDeviceMessage } from "../matrix/events.js";
import type { JsonValue } from "../store/json.js";
import type { Store } from "../store/store.js";
import { requestName, routeOf, type OutgoingRequest } from "./crypto-requests.js";
import { CRYPTO_NAMESPACE, errorText, openCryptoStore, type CryptoStore } from "./crypto-store.js";
import { decryptionError } from "./decryption-errors.js";
import { loadCryptoSdk, type CryptoSdk } from "./sdk.js";
import { keyCountsFor, toDeviceFor, type DeviceTarget } from "./transaction-feed.js";

export interface CryptoMachineOptions {
  /** The bridge's store: the device id and the crypto state live in its "crypto" namespace. */
  store: Store;
  /** Sends the machine's requests (as the device) and creates the device (MSC4190). */
  client: Pick<ServerEndpoints, "putDevice" | "callAsDevice">;
  /** Whose device: the bot. */
  userId: string;
  /** The 32-byte store key (derivePickleKey of encryption.pickleKey). */
  storeKey: Uint8Array;
  /** The device's display name. */
  deviceName: string;
  /** Decrypt only from senders meeting this trust level (default: any sender). */
  trust?: "untrusted" | "crossSignedOrLegacy" | "crossSigned";
  log: Logger;
}

/** The name of the bot's crypto store, and of its device id's key. */
const BOT = "bot";
/** Longest wait before a failed request is tried again. */
const MAX_RETRY_MS = 60_000;

/**
 * One device of one of our users (the bot's, for now) with its Rust crypto machine on the
 * durable crypto store. The device is made without `/login` (MSC4190) with an id kept in the
 * store; the machine's requests go out as that device, each only after the crypto state
 * behind it is stored (IdbMirror.settled). Transactions feed it their to-device messages,
 * device list changes and key counts; `decrypt` turns an `m.room.encrypted` event into the
 * plain one.
 *
 * Requests that fail stay queued in the machine and are retried (after 1 s, doubling to
 * 60 s, and whenever something new arrives); `close` stops that.
 */
export class CryptoMachine {
  private draining: Promise<void> | undefined;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  private constructor(
    private readonly sdk: CryptoSdk,
    private readonly machine: OlmMachine,
    private readonly crypto: CryptoStore,
    readonly device: DeviceTarget,
    private readonly o: CryptoMachineOptions,
  ) {}

  /**
   * Opens the bot's device: its id from the store (a new one is made and stored the first
   * time), the device on the homeserver (PUT, idempotent), the crypto state, then sends what
   * the machine has to send (a new device uploads its keys). Rejects naming what failed.
   */
  static async open(o: CryptoMachineOptions): Promise<CryptoMachine> {
    const sdk = await loadCryptoSdk();
    const kv = o.store.namespace<JsonValue>(CRYPTO_NAMESPACE);
    let deviceId = (await kv.get(`${BOT}/device`)) as string | undefined;
    if (deviceId === undefined) {
      deviceId = `BRIDGEKIT${randomBytes(6).toString("hex").toUpperCase()}`;
      await kv.set(`${BOT}/device`, deviceId);
    }
    try {
      await o.client.putDevice(o.userId, deviceId, o.deviceName);
    } catch (err) {
      throw new Error(
        `cannot create the bot's device ${deviceId} (MSC4190: PUT /_matrix/client/v3/devices/${deviceId} as the appservice; Synapse 1.141+ or msc4190_enabled): ${errorText(err)}`,
        { cause: err },
      );
    }
    const crypto = await openCryptoStore(o.store, BOT, o.storeKey, o.log);
    let machine: OlmMachine;
    try {
      machine = await sdk.OlmMachine.initFromStore(
        new sdk.UserId(o.userId),
        new sdk.DeviceId(deviceId),
        crypto.handle,
      );
    } catch (err) {
      await crypto.close();
      throw new Error(
        `cannot open the crypto state of ${o.userId} ${deviceId} in ${o.store.description} (is encryption.pickleKey the one it was written with?): ${errorText(err)}`,
        { cause: err },
      );
    }
    const self = new CryptoMachine(sdk, machine, crypto, { userId: o.userId, deviceId }, o);
    o.log.info(
      { userId: o.userId, deviceId, curve25519: machine.identityKeys.curve25519.toBase64() },
      "end-to-bridge encryption: device ready",
    );
    await self.sendOutgoing();
    return self;
  }

  /** The device's Curve25519 and Ed25519 keys (base64). */
  get identityKeys(): { curve25519: string; ed25519: string } {
    const keys = this.machine.identityKeys;
    return { curve25519: keys.curve25519.toBase64(), ed25519: keys.ed25519.toBase64() };
  }

  /** A transaction's to-device messages: those for this device go into the machine. */
  async receiveToDevice(messages: readonly ToDeviceMessage[]): Promise<void> {
    const events = toDeviceFor(messages, this.device);
    if (events.length === 0) return;
    const processed = await this.machine.receiveSyncChangesMsc4186(
      JSON.stringify(events),
      new this.sdk.DeviceLists(),
      new Map<string, number>(),
      undefined,
    );
    for (const p of processed) {
      if (p.type === this.sdk.ProcessedToDeviceEventType.UnableToDecrypt)
        // A re-sent transaction replays messages already handled: harmless, hence debug.
        this.o.log.debug({ event: redactedType(p.rawEvent) }, "a to-device message could not be decrypted");
    }
    await this.settledThenSend();
  }

  /** A transaction's device list changes. */
  async receiveDeviceLists(lists: DeviceLists): Promise<void> {
    const ids = (users: string[]) => users.map((u) => new this.sdk.UserId(u));
    await this.machine.receiveSyncChangesMsc4186(
      "[]",
      new this.sdk.DeviceLists(ids(lists.changed), ids(lists.left)),
      new Map<string, number>(),
      undefined,
    );
    await this.settledThenSend();
  }

  /** A transaction's one-time-key counts and unused fallback key types (this device's). */
  async receiveKeyCounts(counts: DeviceKeyCounts): Promise<void> {
    const { oneTimeKeys, fallbackKeyTypes } = keyCountsFor(counts, this.device);
    if (oneTimeKeys === undefined && fallbackKeyTypes === undefined) return;
    await this.machine.receiveSyncChangesMsc4186(
      "[]",
      new this.sdk.DeviceLists(),
      oneTimeKeys ?? new Map<string, number>(),
      fallbackKeyTypes,
    );
    await this.settledThenSend();
  }

  /**
   * The plain event behind an `m.room.encrypted` one: its type and content decrypted, every
   * other field kept, `unsigned["io.bridgekit.encrypted"]` set. Throws the inbox error
   * `decryptionError` makes (retried while the key may still come, else dead-lettered with
   * a notice to the sender).
   */
  async decrypt(event: MatrixEvent): Promise<MatrixEvent> {
    const { sdk } = this;
    let decrypted;
    try {
      decrypted = await this.machine.decryptRoomEvent(
        JSON.stringify(event),
        new sdk.RoomId(event.room_id),
        new sdk.DecryptionSettings(trustRequirement(sdk, this.o.trust)),
      );
    } catch (err) {
      throw decryptionError(sdk, event, err);
    }
    const plain = JSON.parse(decrypted.event) as { type?: unknown; content?: unknown };
    if (typeof plain.type !== "string" || typeof plain.content !== "object" || plain.content === null)
      throw decryptionError(sdk, event, new Error("the decrypted payload has no type or content"));
    return {
      ...event,
      type: plain.type,
      content: plain.content as Record<string, unknown>,
      unsigned: { ...(event.unsigned ?? {}), "io.bridgekit.encrypted": true },
    };
  }

  /** Stops retrying, waits for what is being sent, closes the machine and its store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.draining;
    this.machine.close();
    await this.crypto.close();
  }

  private async settledThenSend(): Promise<void> {
    await this.crypto.mirror.settled();
    await this.sendOutgoing();
  }

  /**
   * Sends every outgoing request, again while new ones were asked for meanwhile; one drain at
   * a time. Never rejects: a failed request is logged and retried later.
   */
  sendOutgoing(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.draining) {
      this.again = true;
      return this.draining;
    }
    this.draining = (async () => {
      try {
        do {
          this.again = false;
          await this.drainOnce();
        } while (this.again && !this.closed);
      } finally {
        this.draining = undefined;
      }
    })();
    return this.draining;
  }

  private async drainOnce(): Promise<void> {
    let failed = 0;
    try {
      const requests = await this.machine.outgoingRequests();
      // Nothing leaves before the state that made it is stored.
      await this.crypto.mirror.settled();
      for (const request of requests) if (!(await this.send(request))) failed++;
      await this.crypto.mirror.settled();
    } catch (err) {
      this.o.log.error(
        { err },
        "end-to-bridge encryption: cannot read or store the crypto machine's requests",
      );
      failed++;
    }
    if (failed === 0) {
      this.failures = 0;
      return;
    }
    const waitMs = Math.min(MAX_RETRY_MS, 1_000 * 2 ** this.failures++);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.sendOutgoing(), waitMs);
    this.retryTimer.unref();
  }

  /** Sends one request and tells the machine; false (logged) when it failed. */
  private async send(request: OutgoingRequest): Promise<boolean> {
    const name = requestName(this.sdk, request);
    const route = routeOf(this.sdk, request);
    if (route === undefined || request.id === undefined) {
      this.o.log.debug(
        { request: name },
        "end-to-bridge encryption: request not sent (not used by the bridge)",
      );
      return true;
    }
    try {
      const response = await this.o.client.callAsDevice<unknown>(
        route.method,
        route.path,
        this.device,
        JSON.parse(request.body) as unknown,
      );
      await this.machine.markRequestAsSent(request.id, request.type, JSON.stringify(response));
      return true;
    } catch (err) {
      this.o.log.error({ err, request: name }, "end-to-bridge encryption: a request failed; retried later");
      return false;
    }
  }
}

function trustRequirement(sdk: CryptoSdk, trust: CryptoMachineOptions["trust"]): number {
  switch (trust) {
    case "crossSigned":
      return sdk.TrustRequirement.CrossSigned;
    case "crossSignedOrLegacy":
      return sdk.TrustRequirement.CrossSignedOrLegacy;
    default:
      return sdk.TrustRequirement.Untrusted;
  }
}

/** The type of a to-device event's JSON, for logs (never its content). */
function redactedType(json: string): string {
  try {
    return String((JSON.parse(json) as { type?: unknown }).type);
  } catch {
    return "unparsable";
  }
}
