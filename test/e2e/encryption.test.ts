// End-to-bridge encryption on the real Synapse with a real client (issue #19): the echo bridge
// (`bridgekit start` as a child process, encryption.allow on, registration from
// `bridgekit generate-registration`), a Synapse with the MSC2409 to-device and MSC3202
// transaction extensions on and every room encrypted by default, and Alice on matrix-js-sdk
// with its Rust crypto. Alice's messages go out as m.room.encrypted; the echo adapter only
// answers what it received, so "echo: <body>" from the ghost proves the adapter got the
// plain body. Then the bridge is SIGKILLed and restarted on the same store and Alice's next
// message (in the same Megolm session) still gets through; then a message whose key never
// comes is answered with the bot's notice instead of vanishing.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Registration } from "../../src/registration/index.js";
import { KEY_WAIT_USER_MESSAGE } from "../../src/crypto/decryption-errors.js";
import { startBridgeProcess, type BridgeProcess } from "./support/bridge-process.js";
import { prepareEchoBridgeFiles } from "./support/echo-bridge-files.js";
import { startCryptoClient, type CryptoClient, type SeenMessage } from "./support/crypto-client.js";
import { poll } from "./support/matrix-user.js";
import { freePort, startSynapse, type SynapseInstance } from "./support/synapse.js";

const DOMAIN = "localhost";
const PICKLE_KEY = "e2e-pickle-key-0123456789abcdef";

describe("encrypted portals through Synapse with matrix-js-sdk (bridge as a child process)", () => {
  let dir: string;
  let config: string;
  let port: number;
  let reg: Registration;
  let synapse: SynapseInstance | undefined;
  let bridge: BridgeProcess | undefined;
  let alice: CryptoClient | undefined;
  let roomId: string;
  const ghost = `@echo_alice:${DOMAIN}`;
  const bot = `@echobot:${DOMAIN}`;

  let pointAt: (hsUrl: string) => Promise<void>;

  const describeAll = () =>
    `--- bridge stdout ---\n${bridge?.stdout().slice(-4000)}\n--- bridge stderr ---\n${bridge?.stderr().slice(-2000)}\n${synapse?.logTail(20)}`;

  let lastSeen: SeenMessage[] = [];
  async function seen(): Promise<SeenMessage[]> {
    lastSeen = await alice!.messages(roomId);
    return lastSeen;
  }

  async function waitForMessage(
    match: (m: SeenMessage) => boolean,
    what: string,
    timeoutMs = 30_000,
  ): Promise<SeenMessage> {
    return poll(
      async () => (await seen()).find(match),
      () => `${what}; Alice sees ${JSON.stringify(lastSeen)}\n${describeAll()}`,
      timeoutMs,
    );
  }

  const startBridge = async () => {
    bridge = await startBridgeProcess(config, { env: { BRIDGEKIT_LOGGING_LEVEL: "debug" } });
    await bridge.waitForLog((l) => l.msg === "end-to-bridge encryption: device ready");
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-e2e-encryption-"));
    port = await freePort();
    const files = await prepareEchoBridgeFiles({
      dir,
      domain: DOMAIN,
      port,
      extraLines: [
        `encryption: { allow: true, pickleKey: "${PICKLE_KEY}" }`,
        // A key that never comes gives up after ~6 s (200 ms doubling, 6 tries), not an hour.
        "inbox: { retry: { firstDelayMs: 200, maxDelayMs: 3200, maxAttempts: 6 } }",
      ],
    });
    ({ configPath: config, registration: reg, pointAt } = files);
    assert.equal(
      (reg as unknown as Record<string, unknown>)["org.matrix.msc3202"],
      true,
      "generate-registration asked for the MSC3202 transaction extensions",
    );
    synapse = await startSynapse({
      registrations: [reg],
      serverName: DOMAIN,
      encryption: true,
      // Portals are made by the bot; this makes them encrypted the way many servers do.
      config: { encryption_enabled_by_default_for_room_type: "all" },
    });
    await pointAt(synapse.url);
    alice = await startCryptoClient(synapse.url, await synapse.registerUser("alice"));
  });

  after(async () => {
    await alice?.stop();
    await bridge?.stop();
    await synapse?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("the bot's device is made without /login and announces its keys", async () => {
    await startBridge();
    const ready = bridge!.logs().find((l) => l.msg === "end-to-bridge encryption: device ready")!;
    const deviceId = String(ready.deviceId);
    const devices = await alice!.client.getCrypto()!.getUserDeviceInfo([bot], true);
    assert.ok(
      devices.get(bot)?.has(deviceId),
      `Alice's client sees the bot's device ${deviceId} in its published keys: ${JSON.stringify([...(devices.get(bot)?.keys() ?? [])])}`,
    );
  });

  it("an encrypted message from matrix-js-sdk reaches the adapter decrypted", async () => {
    roomId = await alice!.join(`#echo_lobby:${DOMAIN}`);
    assert.equal(await alice!.isEncrypted(roomId), true, "the portal is encrypted");
    await alice!.sendText(roomId, "hello in secret");
    const mine = await waitForMessage((m) => m.body === "hello in secret", "Alice's own message");
    assert.equal(mine.encrypted, true, "Alice's message went out as m.room.encrypted");
    const echo = await waitForMessage(
      (m) => m.sender === ghost && m.body === "echo: hello in secret",
      "the ghost's echo of the decrypted body",
    );
    assert.equal(echo.msgtype, "m.text");
  });

  it("after SIGKILL and a restart on the same store, the next encrypted message still gets through", async () => {
    const before = bridge!.logs().find((l) => l.msg === "end-to-bridge encryption: device ready")!;
    bridge!.kill("SIGKILL");
    const status = await bridge!.exited;
    assert.equal(status.signal, "SIGKILL");
    await startBridge();
    const again = bridge!.logs().find((l) => l.msg === "end-to-bridge encryption: device ready")!;
    assert.equal(again.deviceId, before.deviceId, "the same device after the restart");
    assert.equal(again.curve25519, before.curve25519, "the same identity key after the restart");
    // Alice's client keeps its Megolm session: only the stored inbound session can decrypt this.
    await alice!.sendText(roomId, "still secret after the crash");
    await waitForMessage(
      (m) => m.sender === ghost && m.body === "echo: still secret after the crash",
      "the echo after the restart",
    );
  });

  it("a message whose key never arrives is not dropped: its sender gets the bot's notice", async () => {
    // An m.room.encrypted event in a Megolm session nobody ever shared with the bridge: a
    // well-formed Megolm message (version 3, index 0, 16 bytes of ciphertext, MAC, signature)
    // so the crypto reads it and looks for the session's key, which never comes.
    const ciphertext = Buffer.concat([
      Buffer.from([3, 0x08, 0x00, 0x12, 16]),
      Buffer.alloc(16, 7),
      Buffer.alloc(8, 1),
      Buffer.alloc(64, 2),
    ])
      .toString("base64")
      .replace(/=+$/, "");
    const res = await fetch(
      `${synapse!.url}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.encrypted/nokey-${Date.now()}`,
      {
        method: "PUT",
        headers: {
          Authorization: `Bearer ${alice!.client.getAccessToken()!}`,
          "Content-Type": "application/json",
        },
        body: JSON.stringify({
          algorithm: "m.megolm.v1.aes-sha2",
          sender_key: "Vj7Rl5+fmAF4nrnnq0oT7s/l3ORlmyCmDMiEpTb+3kM",
          device_id: alice!.deviceId,
          session_id: "qT6H3dg4ZOkzN4D6FnvMxKbKJtC9uB8R1N2XK9L3GJw",
          ciphertext,
        }),
      },
    );
    const body = (await res.json()) as { event_id?: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    const eventId = body.event_id!;
    const notice = await waitForMessage(
      (m) => m.sender === bot && m.msgtype === "m.notice" && (m.body ?? "").includes(KEY_WAIT_USER_MESSAGE),
      `the bot's notice about ${eventId}`,
      60_000,
    );
    assert.match(notice.body!, /not bridged/);
    const event = alice!.client.getRoom(roomId)?.findEventById(notice.eventId);
    assert.equal(event?.replyEventId, eventId, "the notice replies to the undecryptable event");
  });
});
