// The bot's CryptoMachine (src/crypto/crypto-machine.ts) against a Matrix user's own Rust
// crypto, through an in-memory key server: the device made without /login, its keys
// uploaded, a transaction's to-device messages and key counts (stable and unstable keys,
// through the real transaction parser) fed in, an encrypted event decrypted, the same after
// a reopen from the store, and a missing key reported as an error the inbox retries.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { parseTransactionBody } from "../../../src/appservice/transaction-body.js";
import { silentLogger } from "../../../src/common/logger.js";
import { CryptoMachine } from "../../../src/crypto/crypto-machine.js";
import { loadCryptoSdk, type CryptoSdk } from "../../../src/crypto/sdk.js";
import { PermanentError, RetryableError } from "../../../src/inbox/errors.js";
import type { MatrixEvent } from "../../../src/matrix/events.js";
import { openStore, type Store } from "../../../src/store/index.js";
import { FakeKeyServer, type Json } from "../../support/fake-key-server.js";

const BOT = "@bot:example.org";
const ALICE = "@alice:example.org";
const ROOM = "!room:example.org";

function openBot(store: Store, server: FakeKeyServer): Promise<CryptoMachine> {
  return CryptoMachine.open({
    store,
    client: server.client,
    userId: BOT,
    storeKey: new Uint8Array(32).fill(5),
    deviceName: "bridgekit",
    log: silentLogger(),
  });
}

/** Sends everything Alice's machine wants sent, through the key server. */
async function drain(sdk: CryptoSdk, alice: OlmMachine, server: FakeKeyServer): Promise<void> {
  for (const request of await alice.outgoingRequests()) {
    if (request.id === undefined) continue;
    const path =
      request.type === sdk.RequestType.ToDevice
        ? `/_matrix/client/v3/sendToDevice/${(request as InstanceType<CryptoSdk["ToDeviceRequest"]>).event_type}/t`
        : {
            [sdk.RequestType.KeysUpload]: "/_matrix/client/v3/keys/upload",
            [sdk.RequestType.KeysQuery]: "/_matrix/client/v3/keys/query",
            [sdk.RequestType.KeysClaim]: "/_matrix/client/v3/keys/claim",
            [sdk.RequestType.SignatureUpload]: "/_matrix/client/v3/keys/signatures/upload",
          }[request.type as number]!;
    const answer = server.handle(
      "POST",
      path,
      { userId: ALICE, deviceId: "ALICEDEV" },
      JSON.parse(request.body) as Json,
    );
    await alice.markRequestAsSent(request.id, request.type, JSON.stringify(answer));
  }
}

/** Alice encrypts a message to the bot's device (sharing the room key first). */
async function encryptFromAlice(
  sdk: CryptoSdk,
  alice: OlmMachine,
  server: FakeKeyServer,
  body: string,
): Promise<MatrixEvent> {
  await alice.updateTrackedUsers([new sdk.UserId(BOT)]);
  await drain(sdk, alice, server);
  const claim = await alice.getMissingSessions([new sdk.UserId(BOT)]);
  if (claim) {
    const answer = server.handle(
      "POST",
      "/_matrix/client/v3/keys/claim",
      { userId: ALICE, deviceId: "ALICEDEV" },
      JSON.parse(claim.body) as Json,
    );
    await alice.markRequestAsSent(claim.id, claim.type, JSON.stringify(answer));
  }
  for (const request of await alice.shareRoomKey(
    new sdk.RoomId(ROOM),
    [new sdk.UserId(BOT)],
    new sdk.EncryptionSettings(),
  )) {
    const answer = server.handle(
      "PUT",
      `/_matrix/client/v3/sendToDevice/${request.event_type}/t`,
      { userId: ALICE, deviceId: "ALICEDEV" },
      JSON.parse(request.body) as Json,
    );
    await alice.markRequestAsSent(request.id, request.type, JSON.stringify(answer));
  }
  const content = await alice.encryptRoomEvent(
    new sdk.RoomId(ROOM),
    "m.room.message",
    JSON.stringify({ msgtype: "m.text", body }),
  );
  return {
    event_id: `$${body.replace(/\W/g, "")}`,
    room_id: ROOM,
    sender: ALICE,
    type: "m.room.encrypted",
    origin_server_ts: 1,
    content: JSON.parse(content) as Record<string, unknown>,
  };
}

/** A transaction body as Synapse pushes it (unstable keys), parsed by the bridge's parser. */
function transaction(server: FakeKeyServer, deviceId: string, otk: number) {
  return parseTransactionBody({
    events: [],
    "de.sorunome.msc2409.to_device": server.take(),
    "org.matrix.msc3202.device_one_time_keys_count": { [BOT]: { [deviceId]: { signed_curve25519: otk } } },
    "org.matrix.msc3202.device_unused_fallback_key_types": { [BOT]: { [deviceId]: ["signed_curve25519"] } },
  });
}

describe("CryptoMachine", () => {
  it("makes its device without /login, decrypts a user's message fed by a transaction, and again after a reopen", async () => {
    const sdk = await loadCryptoSdk();
    const store = await openStore("memory://");
    const server = new FakeKeyServer();
    const bot = await openBot(store, server);
    const deviceId = bot.device.deviceId;
    assert.deepEqual(server.created, [`${BOT}|${deviceId}`], "PUT /devices/{id} as the bot");
    assert.ok(server.devices.has(`${BOT}|${deviceId}`), "the new device uploaded its keys");

    const alice = await sdk.OlmMachine.initialize(new sdk.UserId(ALICE), new sdk.DeviceId("ALICEDEV"));
    await drain(sdk, alice, server);
    const event = await encryptFromAlice(sdk, alice, server, "hello bridge");

    await assert.rejects(bot.decrypt(event), (err: Error) => {
      assert.ok(err instanceof RetryableError, `before the key arrives: ${err.name}`);
      assert.match(err.message, /MissingRoomKey.*waiting for the key/);
      assert.match(err.userMessage!, /could not decrypt this message/);
      return true;
    });

    const txn = transaction(server, deviceId, 50);
    assert.ok(txn.toDevice.length > 0, "the room key travels as to-device messages");
    await bot.receiveToDevice(txn.toDevice);
    await bot.receiveKeyCounts(txn.keyCounts!);
    const plain = await bot.decrypt(event);
    assert.equal(plain.type, "m.room.message");
    assert.deepEqual(plain.content, { msgtype: "m.text", body: "hello bridge" });
    assert.equal(plain.event_id, event.event_id);
    assert.equal(plain.unsigned?.["io.bridgekit.encrypted"], true);

    const identity = bot.identityKeys;
    await bot.close();
    const again = await openBot(store, server);
    assert.equal(again.device.deviceId, deviceId, "the device id is kept in the store");
    assert.deepEqual(again.identityKeys, identity);
    assert.deepEqual((await again.decrypt(event)).content, { msgtype: "m.text", body: "hello bridge" });
    await again.close();
    alice.close();
    await store.close();
  });

  it("uploads new one-time keys when a transaction says none are left (stable keys too)", async () => {
    const store = await openStore("memory://");
    const server = new FakeKeyServer();
    const bot = await openBot(store, server);
    const id = `${BOT}|${bot.device.deviceId}`;
    const uploads = () => server.calls.filter((c) => c === "POST /keys/upload").length;
    const before = uploads();
    server.oneTimeKeys.set(id, []);
    const txn = parseTransactionBody({
      events: [],
      device_one_time_keys_count: { [BOT]: { [bot.device.deviceId]: { signed_curve25519: 0 } } },
      "org.matrix.msc3202.device_one_time_keys_count": {
        [BOT]: { [bot.device.deviceId]: { signed_curve25519: 99 } },
      },
    });
    await bot.receiveKeyCounts(txn.keyCounts!);
    assert.equal(uploads(), before + 1, "the stable key wins, and 0 keys left makes the device upload more");
    assert.ok(server.oneTimeKeys.get(id)!.length > 0);
    await bot.close();
    await store.close();
  });

  it("refuses a message whose sender's key fails the trust setting, as a PermanentError", async () => {
    const sdk = await loadCryptoSdk();
    const store = await openStore("memory://");
    const server = new FakeKeyServer();
    const bot = await CryptoMachine.open({
      store,
      client: server.client,
      userId: BOT,
      storeKey: new Uint8Array(32).fill(5),
      deviceName: "bridgekit",
      trust: "crossSigned",
      log: silentLogger(),
    });
    const alice = await sdk.OlmMachine.initialize(new sdk.UserId(ALICE), new sdk.DeviceId("ALICEDEV"));
    await drain(sdk, alice, server);
    const event = await encryptFromAlice(sdk, alice, server, "unsigned");
    await bot.receiveToDevice(transaction(server, bot.device.deviceId, 50).toDevice);
    await assert.rejects(bot.decrypt(event), (err: Error) => {
      assert.ok(err instanceof PermanentError, err.name);
      assert.match(err.message, /could not decrypt this message \(UnsignedSenderDevice\)/);
      return true;
    });
    await bot.close();
    alice.close();
    await store.close();
  });
});
