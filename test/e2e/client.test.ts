// HomeserverClient and Intent against a real Synapse (see test/e2e/support/synapse.ts).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HomeserverClient, UserNotInNamespaceError, type RequestInfo } from "../../src/client/index.js";
import { generateRegistration, type Registration } from "../../src/registration/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { startAppserviceStub, type AppserviceStub } from "./support/appservice-stub.js";
import { startSynapse, type SynapseInstance } from "./support/synapse.js";

const DOMAIN = "localhost";

describe("HomeserverClient and Intent against Synapse", () => {
  let synapse: SynapseInstance;
  let stub: AppserviceStub;
  let limitedStub: AppserviceStub;
  let reg: Registration;
  let limitedReg: Registration;
  let store: Store;
  let client: HomeserverClient;
  const tmp = mkdtempSync(join(tmpdir(), "bk-e2e-client-"));
  const storeUrl = `sqlite://${join(tmp, "bridge.db")}`;
  const ghost = (name: string) => `@bk_${name}:${DOMAIN}`;
  const makeClient = (s: Store, more: Partial<ConstructorParameters<typeof HomeserverClient>[0]> = {}) =>
    new HomeserverClient({
      homeserverUrl: synapse.url,
      domain: DOMAIN,
      registration: reg,
      store: s,
      retry: { baseDelayMs: 50, maxDelayMs: 1000 },
      ...more,
    });

  before(async () => {
    reg = generateRegistration({
      id: "bk-e2e",
      url: "http://127.0.0.1:1",
      domain: DOMAIN,
      senderLocalpart: "bkbot",
      ghosts: "bk_{id}",
      portals: "bk_{id}",
    });
    stub = await startAppserviceStub(reg.hs_token);
    reg.url = stub.url;
    limitedReg = generateRegistration({
      id: "bk-limited",
      url: "http://127.0.0.1:1",
      domain: DOMAIN,
      senderLocalpart: "limbot",
      ghosts: "lim_{id}",
    });
    limitedReg.rate_limited = true;
    limitedStub = await startAppserviceStub(limitedReg.hs_token);
    limitedReg.url = limitedStub.url;
    synapse = await startSynapse({
      registrations: [reg, limitedReg],
      serverName: DOMAIN,
      rateLimits: { rc_message: { per_second: 1, burst_count: 2 } },
    });
    store = await openStore(storeUrl);
    client = makeClient(store);
  });

  after(async () => {
    await client?.close();
    await store?.close();
    await synapse?.stop();
    await stub?.close();
    await limitedStub?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("answers /versions and pings the appservice through the homeserver", async () => {
    const versions = await client.versions();
    assert.ok(versions.versions.includes("v1.1"), `versions: ${versions.versions.join(",")}`);
    const pong = await client.ping("e2e-ping");
    assert.equal(typeof pong.duration_ms, "number");
  });

  it("registers a ghost; registering it again is a no-op", async () => {
    assert.deepEqual(await client.register(ghost("reg")), { userId: ghost("reg"), created: true });
    assert.deepEqual(await client.register(ghost("reg")), { userId: ghost("reg"), created: false });
    assert.deepEqual((await client.whoami(ghost("reg"))).user_id, ghost("reg"));
  });

  it("refuses users outside the namespace locally, with no request", () => {
    const seen: RequestInfo[] = [];
    const c = makeClient(store, { onRequest: (i) => seen.push(i) });
    for (const user of [`@alice:${DOMAIN}`, `@lim_x:${DOMAIN}`, `@bk_x:elsewhere.org`]) {
      assert.throws(() => c.intent(user), UserNotInNamespaceError);
    }
    assert.equal(seen.length, 0);
  });

  it("creates a room with an alias that resolves; a ghost's message masquerades and carries ts and external_url", async () => {
    const roomId = await client.botIntent.createRoom({
      room_alias_name: "bk_portal",
      name: "Portal",
      preset: "public_chat",
    });
    assert.deepEqual((await client.resolveAlias(`#bk_portal:${DOMAIN}`))?.roomId, roomId);
    const ts = 1_600_000_000_000;
    const alice = client.intent(ghost("alice"));
    const eventId = await alice.sendText(roomId, "hello from remote", {
      ts,
      externalUrl: "https://remote.example/1",
    });
    const event = await stub.waitForEvent((e) => e.event_id === eventId);
    assert.equal(event.sender, ghost("alice"));
    assert.equal(event.origin_server_ts, ts);
    assert.equal(event.room_id, roomId);
    assert.deepEqual(event.content, {
      msgtype: "m.text",
      body: "hello from remote",
      external_url: "https://remote.example/1",
    });
    const stateId = await client.botIntent.sendState(
      roomId,
      "m.room.topic",
      "",
      { topic: "t" },
      { ts: ts + 5 },
    );
    const stateEvent = await stub.waitForEvent((e) => e.event_id === stateId);
    assert.equal(stateEvent.origin_server_ts, ts + 5);
    assert.equal(stateEvent.sender, client.botUserId);
  });

  it("joins a ghost to an invite-only room through a bot invite", async () => {
    const roomId = await client.botIntent.createRoom({ preset: "private_chat" });
    await client.intent(ghost("invited")).ensureJoined(roomId);
    const members = await client.getState(client.botUserId, roomId);
    const member = members.find((e) => e.type === "m.room.member" && e.state_key === ghost("invited"));
    assert.equal(member?.content.membership, "join");
  });

  it("re-joins after a pushed kick is observed", async () => {
    const roomId = await client.botIntent.createRoom({ preset: "public_chat" });
    const seen: RequestInfo[] = [];
    const c = makeClient(store, { onRequest: (i) => seen.push(i) });
    const kicked = c.intent(ghost("kicked"));
    await kicked.ensureJoined(roomId);
    await c.kick(c.botUserId, roomId, ghost("kicked"), "test");
    const leave = await stub.waitForEvent(
      (e) =>
        e.room_id === roomId &&
        e.type === "m.room.member" &&
        e.state_key === ghost("kicked") &&
        e.content.membership === "leave",
    );
    assert.equal(await c.observeEvent(leave), true);
    await kicked.sendText(roomId, "back");
    assert.equal(
      seen.filter((s) => s.path.includes("/join/")).length,
      2,
      "joined, then re-joined after the kick",
    );
    await c.close();
  });

  it("sets profile, uploads and downloads media, lists a room per network", async () => {
    const bob = client.intent(ghost("bob"));
    assert.equal(await bob.setDisplayName("Bob (remote)"), true);
    assert.equal(await bob.setDisplayName("Bob (remote)"), false);
    assert.equal((await client.getProfile(ghost("bob"))).displayname, "Bob (remote)");
    const mxc = await bob.uploadMedia(new TextEncoder().encode("media bytes"), {
      contentType: "text/plain",
      filename: "a.txt",
    });
    const media = await client.downloadMedia(mxc);
    assert.equal(new TextDecoder().decode(media.data), "media bytes");
    const roomId = await client.botIntent.createRoom({ preset: "public_chat" });
    await client.setRoomDirectoryVisibility("irc.example.net", roomId, "public");
    await bob.ensureJoined(roomId);
    await bob.setTyping(roomId, true, 1000);
    await bob.setPresence("online");
  });

  it("retries through Synapse's rate limit (rate_limited: true) and keeps the room's order", async () => {
    const seen: RequestInfo[] = [];
    const limited = new HomeserverClient({
      homeserverUrl: synapse.url,
      domain: DOMAIN,
      registration: limitedReg,
      store,
      retry: { baseDelayMs: 50, maxDelayMs: 1000, maxAttempts: 10 },
      onRequest: (i) => seen.push(i),
    });
    try {
      const carol = limited.intent(`@lim_carol:${DOMAIN}`);
      const roomId = await carol.createRoom({ preset: "public_chat" });
      const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => carol.sendText(roomId, `n${i}`)));
      assert.equal(new Set(ids).size, 6);
      const sendAttempts = seen.filter((s) => s.method === "PUT" && s.path.includes("/send/"));
      assert.ok(
        sendAttempts.length > 6,
        `rate limiting caused retries (${sendAttempts.length} attempts for 6 sends)`,
      );
      const pushed = await Promise.all(ids.map((id) => limitedStub.waitForEvent((e) => e.event_id === id)));
      assert.deepEqual(
        pushed.map((e) => e.content.body),
        ["n0", "n1", "n2", "n3", "n4", "n5"],
      );
      const order = limitedStub.events.filter((e) => e.room_id === roomId && e.type === "m.room.message");
      assert.deepEqual(
        order.map((e) => e.content.body),
        ["n0", "n1", "n2", "n3", "n4", "n5"],
        "the homeserver received them in call order",
      );
    } finally {
      await limited.close();
    }
  });

  it("a restarted bridge (new client, same store) re-registers and re-joins nobody", async () => {
    const roomId = await client.botIntent.createRoom({ preset: "public_chat" });
    const names = ["r1", "r2", "r3"];
    for (const n of names) {
      await client.intent(ghost(n)).ensureJoined(roomId);
      await client.intent(ghost(n)).setDisplayName(`ghost ${n}`);
    }
    await client.close();
    await store.close();

    store = await openStore(storeUrl);
    const seen: RequestInfo[] = [];
    client = makeClient(store, { onRequest: (i) => seen.push(i) });
    for (const n of names) {
      const intent = client.intent(ghost(n));
      await intent.ensureRegistered();
      await intent.ensureJoined(roomId);
      await intent.setDisplayName(`ghost ${n}`);
      await intent.sendText(roomId, `after restart ${n}`);
    }
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.path.split("/").slice(-3, -1).join("/")}`),
      names.map(() => "PUT send/m.room.message"),
      "only the sends reached Synapse, and they succeeded (the ghosts really are members)",
    );
  });
});
