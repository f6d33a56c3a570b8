// Rooms that look and behave bridged (issue #17), on a real Synapse: a portal's bridge info
// (m.bridge, uk.half-shot.bridge) set at creation and updated by setRoomInfo; a portal
// upgraded by a user (POST /upgrade) keeps bridging both ways in the new room; a remote read
// receipt moves the ghost's read marker as the user's /sync shows it, and the user's own by
// double puppet when their login's account read it; presence both ways; a
// private portal a login's session makes invites the login's user and sits in the login's
// space. An in-process
// Bridge with the fake logins-capable network (test/support/fake-network.ts) and its relay
// bot; real Matrix users speak the client-server API. The steps share one Synapse and run in
// order. The same paths on the fake homeserver: test/unit/rooms/*.test.ts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bridge } from "../../src/bridge/index.js";
import { loadConfig } from "../../src/config/load.js";
import { saveRegistration, type Registration } from "../../src/registration/index.js";
import { FakeNetwork, loginsAdapter } from "../support/fake-network.js";
import { capturedLog, loginsConfigYaml, loginsRegistration, loginsWaits } from "./support/logins-e2e.js";
import { MatrixUser, poll } from "./support/matrix-user.js";
import { freePort, startSynapse, type SynapseInstance } from "./support/synapse.js";

const DOMAIN = "localhost";
const BOT = `@fakebot:${DOMAIN}`;
const INFO_KEY = "fake-rooms://fake/main/lobby";

describe("rooms on Synapse: bridge info, upgrades, receipts and presence, private portals, spaces", () => {
  let dir: string;
  let synapse: SynapseInstance | undefined;
  let bridge: Bridge | undefined;
  let reg: Registration;
  const network = new FakeNetwork();
  const adapter = Object.assign(loginsAdapter(network, { relayBot: true }), {
    bridgeInfo: {
      protocol: { displayName: "Fake Chat", externalUrl: "https://fake.example" },
      network: { id: "main", displayName: "Main" },
      room: (id: string) => ({ externalUrl: `https://fake.example/rooms/${id}` }),
    },
  });
  let alice: MatrixUser;
  /** The appservice's bot, through the client-server API with the as_token. */
  let bot: MatrixUser;
  let lobby = "";
  /** Bob's message in the upgraded room (remote id b1). */
  let bobsMessage = "";
  const log = capturedLog();
  const { sentMatching } = loginsWaits({ network, botUserId: BOT, logTail: log.tail });

  let syncs = 0;
  /** The m.read receipt of `reader` on `eventId` in the portal, as alice's /sync shows it. */
  function receiptSeen(reader: string, eventId: string): Promise<{ ts?: unknown }> {
    type Receipts = Record<string, Record<string, Record<string, { ts?: unknown }>>>;
    type Sync = {
      rooms?: {
        join?: Record<string, { ephemeral?: { events?: Array<{ type: string; content: Receipts }> } }>;
      };
    };
    return poll(
      async () => {
        // Synapse caches an initial /sync for a while, by its filter: each poll asks with another.
        const filter = encodeURIComponent(
          JSON.stringify({ room: { timeline: { limit: 1 + (++syncs % 50) } } }),
        );
        const sync = await alice.request<Sync>("GET", `/_matrix/client/v3/sync?timeout=0&filter=${filter}`);
        const events = sync.rooms?.join?.[lobby]?.ephemeral?.events ?? [];
        return events.find((e) => e.type === "m.receipt")?.content[eventId]?.["m.read"]?.[reader];
      },
      () => `no receipt of ${reader} on ${eventId} in alice's /sync\n${log.tail()}`,
    );
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-e2e-rooms-"));
    const port = await freePort();
    reg = { ...loginsRegistration("fake-rooms", port, DOMAIN), receive_ephemeral: true };
    synapse = await startSynapse({ registrations: [reg], doublePuppet: true, serverName: DOMAIN });
    await saveRegistration(join(dir, "doublepuppet.yaml"), synapse.doublePuppet!);
    const configPath = join(dir, "config.yaml");
    await writeFile(
      configPath,
      loginsConfigYaml({
        homeserverUrl: synapse.url,
        domain: DOMAIN,
        port,
        store: "sqlite://data/rooms.db",
        encryptionKey: "e2e-rooms-encryption-key-0123456789",
        extra: [
          "permissions: { '*': relay, localhost: admin }",
          "doublePuppet: { registration: doublepuppet.yaml }",
        ],
      }),
    );
    network.addAccount("alice", "alice-remote-pw");
    const a = await synapse.registerUser("alice");
    alice = new MatrixUser(synapse.url, a.userId, a.accessToken);
    bot = new MatrixUser(synapse.url, BOT, reg.as_token);
    // One space per login (config bridge.spaces), through its env override.
    bridge = await Bridge.fromConfig(await loadConfig(configPath, { BRIDGEKIT_BRIDGE_SPACES: "login" }), {
      registration: reg,
      adapter,
      logger: log.logger,
    });
    await bridge.start();
  });

  after(async () => {
    await bridge?.stop();
    await synapse?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a new portal carries m.bridge and uk.half-shot.bridge; setRoomInfo's new name reaches both", async () => {
    lobby = await alice.join(`#fake_lobby:${DOMAIN}`);
    const expected = {
      bridgebot: BOT,
      protocol: { id: "fake", displayname: "Fake Chat", external_url: "https://fake.example" },
      network: { id: "main", displayname: "Main" },
      channel: { id: "lobby", displayname: "Fake lobby", external_url: "https://fake.example/rooms/lobby" },
    };
    assert.deepEqual(await alice.state(lobby, "m.bridge", INFO_KEY), expected);
    assert.deepEqual(await alice.state(lobby, "uk.half-shot.bridge", INFO_KEY), expected);

    await adapter.ctx!.setRoomInfo("lobby", { name: "The Lobby" });
    const renamed = { ...expected, channel: { ...expected.channel, displayname: "The Lobby" } };
    await poll(
      async () => {
        const now = await alice.state(lobby, "uk.half-shot.bridge", INFO_KEY);
        return (now?.channel as { displayname?: string } | undefined)?.displayname === "The Lobby"
          ? now
          : undefined;
      },
      () => `the bridge info was not renamed\n${log.tail()}`,
    );
    assert.deepEqual(await alice.state(lobby, "m.bridge", INFO_KEY), renamed);
    assert.deepEqual(await alice.state(lobby, "m.room.name"), { name: "The Lobby" });
    await alice.send(lobby, "hello lobby");
    await sentMatching("alice's relayed message", (s) => s.text.endsWith("hello lobby"));
  });

  it("a portal upgraded by a user follows to the new room and keeps bridging both ways", async () => {
    // Upgrading takes power level 100 (the tombstone's); the bot grants it to Alice.
    const levels = (await bot.state(lobby, "m.room.power_levels"))!;
    await bot.request(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(lobby)}/state/m.room.power_levels/`,
      {
        ...levels,
        users: { ...(levels.users as Record<string, number>), [alice.userId]: 100 },
      },
    );
    const { replacement_room: next } = await alice.request<{ replacement_room: string }>(
      "POST",
      `/_matrix/client/v3/rooms/${encodeURIComponent(lobby)}/upgrade`,
      { new_version: "10" },
    );
    // The bot leaving the old room is the upgrade's last step.
    await poll(
      async () => ((await alice.joinedMembers(lobby)).includes(BOT) ? undefined : true),
      () => `the bot did not leave the old room\n${log.tail()}`,
    );
    assert.equal((await bridge!.portals.get("lobby"))?.roomId, next);
    assert.ok((await alice.joinedMembers(next)).includes(BOT), "the bot is in the new room");
    const notice = (await alice.timeline(lobby)).find((e) => e.sender === BOT && e.type === "m.room.message");
    assert.match(
      String(notice?.content.body),
      /^This room was upgraded: the bridge goes on in https:\/\/matrix\.to/,
    );
    assert.equal(
      ((await alice.state(next, "m.bridge", INFO_KEY))?.channel as { id?: string } | undefined)?.id,
      "lobby",
    );

    await alice.send(next, "hello new room");
    await sentMatching("alice's message in the new room", (s) => s.text.endsWith("hello new room"));
    await adapter.ctx!.send("lobby", "bob", "bob in the new room", { remoteId: "b1" });
    const fromBob = await alice.waitForEvent(
      next,
      (e) => e.content.body === "bob in the new room",
      "bob's message",
    );
    assert.equal(fromBob.sender, `@fake_bob:${DOMAIN}`);
    lobby = next;
    bobsMessage = fromBob.event_id;
  });

  it("a remote read receipt moves the ghost's read marker in the user's /sync", async () => {
    await adapter.ctx!.markRead("lobby", "b1", { user: "carol" });
    const carol = `@fake_carol:${DOMAIN}`;
    const read = await receiptSeen(carol, bobsMessage);
    assert.equal(typeof read.ts, "number");
  });

  it("a ghost's presence is set; a Matrix user's presence reaches their login's session", async () => {
    await adapter.ctx!.setPresence("bob", "unavailable", "out for lunch");
    const ghostPresence = await alice.request<Record<string, unknown>>(
      "GET",
      `/_matrix/client/v3/presence/${encodeURIComponent(`@fake_bob:${DOMAIN}`)}/status`,
    );
    assert.deepEqual([ghostPresence.presence, ghostPresence.status_msg], ["unavailable", "out for lunch"]);

    await bridge!.logins!.add(alice.userId, {
      id: "alice",
      data: { token: network.accounts.get("alice")!.token },
    });
    const session = network.sessions.get("alice")!;
    await alice.request("PUT", `/_matrix/client/v3/presence/${encodeURIComponent(alice.userId)}/status`, {
      presence: "unavailable",
      status_msg: "in a meeting",
    });
    const told = await poll(
      () => Promise.resolve(session.presences.find((p) => p.statusMsg === "in a meeting")),
      () => `alice's session was told no presence: ${JSON.stringify(session.presences)}\n${log.tail()}`,
    );
    assert.deepEqual([told.userId, told.presence], [alice.userId, "unavailable"]);
  });

  it("the login's own account reading a message moves the user's own read marker, by double puppet", async () => {
    await network.sessions.get("alice")!.ctx.markRead("lobby", "b1", { user: "alice" });
    const read = await receiptSeen(alice.userId, bobsMessage);
    assert.equal(typeof read.ts, "number");
  });

  it("a private portal made by a login's session invites the login's user, who can then join and talk", async () => {
    const session = network.sessions.get("alice")!;
    const portal = await session.ctx.portals.ensure("hideout", { visibility: "private", name: "Hideout" });
    assert.deepEqual(await bot.state(portal.roomId, "m.room.join_rules"), { join_rule: "invite" });
    // Synapse caches an initial /sync a while: the invite is read from the room's state instead.
    await poll(
      async () =>
        (await bot.state(portal.roomId, "m.room.member", alice.userId))?.membership === "invite"
          ? true
          : undefined,
      () => `alice was not invited to ${portal.roomId}\n${log.tail()}`,
    );
    assert.equal(await alice.join(portal.roomId), portal.roomId);
    await alice.send(portal.roomId, "psst");
    assert.deepEqual(await sentMatching("alice's message in the private portal", (s) => s.text === "psst"), {
      as: "alice",
      room: "hideout",
      text: "psst",
    });
  });

  it("the login's space holds the portals its session uses, and its user is invited to it", async () => {
    const hideout = (await bridge!.portals.get("hideout"))!;
    const [parent] = (
      await bot.request<Array<{ type: string; state_key: string }>>(
        "GET",
        `/_matrix/client/v3/rooms/${encodeURIComponent(hideout.roomId)}/state`,
      )
    ).filter((e) => e.type === "m.space.parent");
    assert.ok(parent, "the private portal names its space");
    const space = parent.state_key;
    assert.deepEqual(await bot.state(space, "m.room.create").then((c) => c?.type), "m.space");
    assert.deepEqual(await bot.state(space, "m.space.child", hideout.roomId), { via: [DOMAIN] });
    assert.equal((await bot.state(space, "m.room.member", alice.userId))?.membership, "invite");
    assert.equal(await alice.join(space), space);
    const hierarchy = await alice.request<{ rooms: Array<{ room_id: string }> }>(
      "GET",
      `/_matrix/client/v1/rooms/${encodeURIComponent(space)}/hierarchy`,
    );
    assert.ok(
      hierarchy.rooms.some((r) => r.room_id === hideout.roomId),
      JSON.stringify(hierarchy),
    );
  });
});
