/**
 * A real Matrix client with end-to-end encryption for e2e tests: matrix-js-sdk with its Rust
 * crypto (`initRustCrypto`, an in-memory crypto store, so a fresh device each run), logged in
 * as a test user on the test's Synapse and syncing. What a user's Element does, without a
 * browser: it encrypts what it sends into an encrypted room (sharing the room key with every
 * member's devices, the bridge bot's among them) and decrypts what it receives.
 *
 *   const alice = await startCryptoClient(synapse.url, user);   // user from synapse.registerUser
 *   await alice.join("#echo_lobby:localhost");
 *   await alice.sendText(roomId, "hello");                      // m.room.encrypted on the wire
 *   await alice.stop();
 */
import { ClientEvent, createClient, type MatrixEvent, SyncState, type MatrixClient } from "matrix-js-sdk";
import { logger as sdkLogger } from "matrix-js-sdk/lib/logger.js";
import { poll } from "./matrix-user.js";
import type { TestUser } from "./synapse.js";

export interface CryptoClient {
  readonly userId: string;
  readonly deviceId: string;
  readonly client: MatrixClient;
  /** Joins a room by id or alias and waits until the client knows whether it is encrypted. */
  join(roomIdOrAlias: string): Promise<string>;
  /** Whether the client's crypto treats the room as encrypted (m.room.encryption seen). */
  isEncrypted(roomId: string): Promise<boolean>;
  /** Sends m.text (encrypted when the room is); resolves with the event id. */
  sendText(roomId: string, body: string): Promise<string>;
  /**
   * The room's m.room.message events as this client sees them (decrypted where it could),
   * oldest first: sender, body, msgtype, and whether it came encrypted.
   */
  messages(roomId: string): Promise<SeenMessage[]>;
  stop(): Promise<void>;
}

export interface SeenMessage {
  eventId: string;
  sender: string;
  msgtype: string | undefined;
  body: string | undefined;
  encrypted: boolean;
  /** The decryption failure, when the event stayed encrypted for this client. */
  failure: string | undefined;
}

let quiet = false;

/** Starts a syncing, crypto-enabled client for `user` (a new device of it is not made: the user's token's). */
export async function startCryptoClient(baseUrl: string, user: TestUser): Promise<CryptoClient> {
  if (!quiet) {
    // The sdk's logger is loglevel's (its type does not say so); it logs every request otherwise.
    (sdkLogger as unknown as { setLevel(level: string): void }).setLevel("warn");
    quiet = true;
  }
  const who = (await (
    await fetch(`${baseUrl}/_matrix/client/v3/account/whoami`, {
      headers: { Authorization: `Bearer ${user.accessToken}` },
    })
  ).json()) as { device_id?: string };
  if (typeof who.device_id !== "string")
    throw new Error(`whoami for ${user.userId} returned no device_id: ${JSON.stringify(who)}`);
  const deviceId = who.device_id;
  const client = createClient({ baseUrl, userId: user.userId, accessToken: user.accessToken, deviceId });
  await client.initRustCrypto({ useIndexedDB: false });
  const crypto = client.getCrypto();
  if (crypto === undefined) throw new Error("matrix-js-sdk: initRustCrypto left no crypto API");
  const prepared = new Promise<void>((resolve, reject) => {
    const onSync = (state: SyncState) => {
      if (state === SyncState.Prepared || state === SyncState.Syncing) {
        client.off(ClientEvent.Sync, onSync);
        resolve();
      } else if (state === SyncState.Error) {
        client.off(ClientEvent.Sync, onSync);
        reject(new Error(`matrix-js-sdk's first sync for ${user.userId} failed`));
      }
    };
    client.on(ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit: 50 });
  await prepared;

  const describeRoom = (roomId: string) => () =>
    `room ${roomId} as ${user.userId} sees it: ${JSON.stringify(
      client
        .getRoom(roomId)
        ?.getLiveTimeline()
        .getEvents()
        .map((e) => `${e.getType()} ${e.getSender()}`),
    )}`;

  return {
    userId: user.userId,
    deviceId,
    client,
    async join(roomIdOrAlias) {
      const room = await client.joinRoom(roomIdOrAlias);
      // The room's state arrives through sync: wait until the crypto has seen it.
      await poll(
        async () =>
          client.getRoom(room.roomId)?.getMyMembership() === "join" &&
          (await crypto.isEncryptionEnabledInRoom(room.roomId))
            ? true
            : undefined,
        describeRoom(room.roomId),
        30_000,
      );
      return room.roomId;
    },
    isEncrypted: (roomId) => crypto.isEncryptionEnabledInRoom(roomId),
    async sendText(roomId, body) {
      return (await client.sendTextMessage(roomId, body)).event_id;
    },
    async messages(roomId) {
      const events = client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [];
      const seen: SeenMessage[] = [];
      for (const e of events) {
        await client.decryptEventIfNeeded(e);
        const type: string = e.getType();
        if (type !== "m.room.message" && type !== "m.room.encrypted") continue;
        seen.push(seenMessage(e));
      }
      return seen;
    },
    stop() {
      client.stopClient(); // also stops its crypto
      return Promise.resolve();
    },
  };
}

function seenMessage(e: MatrixEvent): SeenMessage {
  const content = e.getContent();
  return {
    eventId: e.getId() ?? "",
    sender: e.getSender() ?? "",
    msgtype: typeof content.msgtype === "string" ? content.msgtype : undefined,
    body: typeof content.body === "string" ? content.body : undefined,
    encrypted: e.isEncrypted(),
    failure: e.decryptionFailureReason ?? undefined,
  };
}
