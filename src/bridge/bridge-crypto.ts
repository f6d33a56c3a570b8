import type { AppserviceHandlers } from "../appservice/handlers.js";
import type { HomeserverClient } from "../client/homeserver-client.js";
import type { Logger } from "../common/logger.js";
import type { BridgeConfig } from "../config/types.js";
import { CryptoMachine } from "../crypto/crypto-machine.js";
import { derivePickleKey } from "../crypto/pickle-key.js";
import type { MatrixEvent } from "../matrix/events.js";
import type { Store } from "../store/store.js";

type CryptoHandlers = Required<
  Pick<AppserviceHandlers, "onToDevice" | "onDeviceLists" | "onOneTimeKeyCounts">
>;

/**
 * End-to-bridge encryption in the Bridge (with `encryption.allow`): the bot's CryptoMachine,
 * opened at start after the bot is registered; the transactions' to-device messages, device
 * lists and key counts fed to it (each in its lane, after the machine is open); and
 * `m.room.encrypted` events decrypted before the router sees them, so adapters get plain
 * events. A failed decryption fails the event's handling (see decryptionError): retried
 * while its key may still come, then a dead letter and a notice to its sender; never
 * dropped silently.
 */
export class BridgeCrypto {
  private readonly storeKey: Uint8Array;
  private machine: CryptoMachine | undefined;
  private readonly ready: Promise<CryptoMachine>;
  private settle!: (machine: CryptoMachine | Error) => void;

  constructor(
    private readonly o: {
      config: BridgeConfig["encryption"];
      store: Store;
      client: HomeserverClient;
      log: Logger;
    },
  ) {
    // At construction: a missing or short key fails before anything starts.
    this.storeKey = derivePickleKey(o.config.pickleKey ?? "");
    this.ready = new Promise<CryptoMachine>((resolve, reject) => {
      this.settle = (m) => (m instanceof Error ? reject(m) : resolve(m));
    });
    this.ready.catch(() => undefined); // observed by waiting handlers; never unhandled
  }

  /** Opens the bot's device and crypto state; rejects (and fails waiting handlers) naming what failed. */
  async start(): Promise<void> {
    try {
      this.machine = await CryptoMachine.open({
        store: this.o.store,
        client: this.o.client,
        userId: this.o.client.botUserId,
        storeKey: this.storeKey,
        deviceName: this.o.config.deviceName,
        trust: this.o.config.trust,
        log: this.o.log,
      });
      this.settle(this.machine);
    } catch (err) {
      this.settle(err as Error);
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.machine?.close();
  }

  /** The event as the router should see it: an `m.room.encrypted` one decrypted. */
  async plain(event: MatrixEvent): Promise<MatrixEvent> {
    if (event.type !== "m.room.encrypted") return event;
    return (await this.ready).decrypt(event);
  }

  handlers(): CryptoHandlers {
    return {
      onToDevice: async (messages) => (await this.ready).receiveToDevice(messages),
      onDeviceLists: async (lists) => (await this.ready).receiveDeviceLists(lists),
      onOneTimeKeyCounts: async (counts) => (await this.ready).receiveKeyCounts(counts),
    };
  }
}
