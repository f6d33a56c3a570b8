// Per-user logins end to end (issue #15): a real Synapse, an in-process Bridge with the fake
// logins-capable network (test/support/fake-network.ts) and provisioning on, and real Matrix
// users speaking the client-server API. Alice logs in through her management room (the
// password redacted), Bob through the provisioning API over HTTP; both talk in a portal
// through their own sessions; Carol, without a login, is told to log in until Alice sets the
// portal's relay; a DM opened by inviting a ghost and one opened from the remote side; a
// restart on the same sqlite store reconnects every login; `logout` stops the session.
// The steps share one Synapse and run in order. The same paths on the fake homeserver:
// test/unit/bridge/logins.test.ts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bridge } from "../../src/bridge/index.js";
import { loadConfig } from "../../src/config/load.js";
import type { MatrixEvent } from "../../src/matrix/events.js";
import type { Registration } from "../../src/registration/index.js";
import { FakeNetwork, dmRoom, loginsAdapter } from "../support/fake-network.js";
import {
  capturedLog,
  createDirectRoom,
  loginsConfigYaml,
  loginsRegistration,
  loginsWaits,
} from "./support/logins-e2e.js";
import { MatrixUser, poll } from "./support/matrix-user.js";
import { freePort, startSynapse, type SynapseInstance } from "./support/synapse.js";

const DOMAIN = "localhost";
const BOT = `@fakebot:${DOMAIN}`;
const SECRET = "e2e-provisioning-secret-0123456789";
const ENCRYPTION_KEY = "e2e-logins-encryption-key-0123456789";
const PASSWORDS = { alice: "alice-remote-pw-4711", bob: "bob-remote-pw-0815" };
const LOGIN_HINT = `you are not logged in to the fake network: send \`login\` to ${BOT}`;

describe("per-user logins through Synapse: management room, provisioning, relay, DMs, restart, logout", () => {
  let dir: string;
  let configPath: string;
  let port: number;
  let reg: Registration;
  let synapse: SynapseInstance | undefined;
  let bridge: Bridge | undefined;
  const network = new FakeNetwork();
  let alice: MatrixUser;
  let bob: MatrixUser;
  let carol: MatrixUser;
  /** The appservice's bot, through the client-server API with the as_token. */
  let bot: MatrixUser;
  let aliceToken: string;
  let bobToken: string;
  let managementRoom = "";
  let portalRoom = "";
  const ghost = (remoteId: string) => `@fake_${remoteId}:${DOMAIN}`;

  const log = capturedLog();
  const logLines = log.lines;
  const { sentMatching, reaches, seen, isNotice, ask, joined, redacted } = loginsWaits({
    network,
    botUserId: BOT,
    logTail: log.tail,
  });

  async function startBridge(): Promise<Bridge> {
    const config = await loadConfig(configPath, {});
    const started = await Bridge.fromConfig(config, {
      registration: reg,
      adapter: loginsAdapter(network),
      logger: log.logger,
    });
    await started.start();
    return started;
  }

  /** The logins of `userId` and their states, as the provisioning API's whoami gives them. */
  async function whoamiLogins(userId: string): Promise<string[][]> {
    const whoami = await provision("GET", "/whoami", userId);
    assert.equal(whoami.status, 200, JSON.stringify(whoami.body));
    return (whoami.body.logins as Array<{ id: string; state: { state_event: string } }>).map((l) => [
      l.id,
      l.state.state_event,
    ]);
  }

  /** Waits for the bot's "not bridged" notice replying to `eventId` and mentioning its sender. */
  async function notBridged(user: MatrixUser, roomId: string, eventId: string): Promise<string> {
    const notice = await seen(
      user,
      roomId,
      (e) =>
        isNotice(e) &&
        (e.content["m.relates_to"] as { "m.in_reply_to"?: { event_id?: string } } | undefined)?.[
          "m.in_reply_to"
        ]?.event_id === eventId,
      `"not bridged" notice replying to ${eventId}`,
    );
    assert.deepEqual((notice.content["m.mentions"] as { user_ids?: string[] }).user_ids, [user.userId]);
    return String(notice.content.body);
  }

  /** A provisioning API call over HTTP on the bridge's own port. */
  async function provision(
    method: "GET" | "POST",
    path: string,
    userId: string,
    o: { body?: unknown; token?: string } = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const url = `http://127.0.0.1:${port}/_matrix/provision/v3${path}?user_id=${encodeURIComponent(userId)}`;
    const res = await fetch(url, {
      method,
      headers: {
        Authorization: `Bearer ${o.token ?? SECRET}`,
        ...(o.body !== undefined ? { "Content-Type": "application/json" } : {}),
      },
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-e2e-logins-"));
    configPath = join(dir, "config.yaml");
    port = await freePort();
    reg = loginsRegistration("fake-logins", port, DOMAIN);
    synapse = await startSynapse({ registrations: [reg], serverName: DOMAIN });
    await writeFile(
      configPath,
      loginsConfigYaml({
        homeserverUrl: synapse.url,
        domain: DOMAIN,
        port,
        store: "sqlite://data/logins.db",
        encryptionKey: ENCRYPTION_KEY,
        extra: [`provisioning: { sharedSecret: "${SECRET}" }`],
      }),
    );
    network.addAccount("alice", PASSWORDS.alice);
    network.addAccount("bob", PASSWORDS.bob);
    network.addAccount("dave", "dave-remote-pw");
    const [a, b, c] = await Promise.all(["alice", "bob", "carol"].map((n) => synapse!.registerUser(n)));
    aliceToken = a!.accessToken;
    bobToken = b!.accessToken;
    alice = new MatrixUser(synapse.url, a!.userId, a!.accessToken);
    bob = new MatrixUser(synapse.url, b!.userId, b!.accessToken);
    carol = new MatrixUser(synapse.url, c!.userId, c!.accessToken);
    bot = new MatrixUser(synapse.url, BOT, reg.as_token);
    await carol.setDisplayName("Carol Q");
    bridge = await startBridge();
  });

  after(async () => {
    await bridge?.stop();
    await synapse?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("Alice logs in through her management room; the password message is redacted", async () => {
    managementRoom = await createDirectRoom(alice, BOT);
    await seen(
      alice,
      managementRoom,
      (e) => isNotice(e) && String(e.content.body).startsWith("Hello! I am the fake bridge bot."),
      "greeting",
    );
    assert.deepEqual((await alice.joinedMembers(managementRoom)).sort(), [alice.userId, BOT].sort());

    await ask(alice, managementRoom, "login", /^Log in to the fake network\.\nUsername\?/);
    await ask(alice, managementRoom, "alice", /^Password\? I will remove your message/);
    const { eventId: secret } = await ask(
      alice,
      managementRoom,
      PASSWORDS.alice,
      "Logged in as alice on fake.",
    );

    await redacted(alice, managementRoom, secret, "the password");

    assert.equal(network.sessions.get("alice")?.disconnected, false, "alice's session is connected");
    await ask(alice, managementRoom, "logins", "- alice on fake (alice): connected");
    assert.ok(
      !logLines.some((l) => l.includes(PASSWORDS.alice)),
      "the password appears nowhere in the bridge's log",
    );
  });

  it("a command typed before the bot has joined a new DM is answered once it joins", async () => {
    const t = await synapse!.registerUser("erin");
    const erin = new MatrixUser(synapse!.url, t.userId, t.accessToken);
    const room = await createDirectRoom(erin, BOT);
    const ping = await erin.send(room, "ping");
    await seen(
      erin,
      room,
      (e) => isNotice(e) && e.content.body === "Pong. You have no logins.",
      "the answer to ping",
    );
    const timeline = await erin.timeline(room, 100);
    const order = (match: (e: MatrixEvent) => boolean) => timeline.findIndex(match);
    const botJoin = order(
      (e) => e.type === "m.room.member" && e.state_key === BOT && e.content.membership === "join",
    );
    assert.ok(
      order((e) => e.event_id === ping) < botJoin,
      "the ping was sent before the bot joined (else this test checks nothing)",
    );
    const pongs = timeline.filter((e) => isNotice(e) && e.content.body === "Pong. You have no logins.");
    assert.equal(pongs.length, 1, "answered once");
  });

  it("Bob logs in through the provisioning API on the bridge's port; logins and whoami show it", async () => {
    const flows = await provision("GET", "/login/flows", bob.userId);
    assert.equal(flows.status, 200, JSON.stringify(flows.body));
    assert.deepEqual(
      (flows.body.flows as Array<{ id: string }>).map((f) => f.id),
      ["password", "qr"],
    );
    const start = await provision("POST", "/login/start/password", bob.userId, { body: {} });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    assert.equal(start.body.type, "user_input");
    assert.deepEqual(
      (start.body.user_input as { fields: Array<{ id: string; type: string }> }).fields.map((f) => [
        f.id,
        f.type,
      ]),
      [
        ["username", "username"],
        ["password", "password"],
      ],
    );
    const done = await provision(
      "POST",
      `/login/step/${encodeURIComponent(String(start.body.login_id))}/${encodeURIComponent(String(start.body.step_id))}/user_input`,
      bob.userId,
      { body: { username: "bob", password: PASSWORDS.bob } },
    );
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.type, "complete");
    assert.deepEqual(done.body.complete, { user_login_id: "bob" });
    assert.equal(network.sessions.get("bob")?.disconnected, false, "bob's session is connected");

    assert.deepEqual((await provision("GET", "/logins", bob.userId)).body, { login_ids: ["bob"] });
    assert.equal((await provision("GET", "/whoami", bob.userId)).body.bridge_bot, BOT);
    assert.deepEqual(await whoamiLogins(bob.userId), [["bob", "CONNECTED"]]);
    // Bob's own Matrix access token, checked by the bridge with Synapse, works as well; with
    // Alice's token he is someone else and is refused.
    const ownToken = await provision("GET", "/logins", bob.userId, { token: bobToken });
    assert.deepEqual([ownToken.status, ownToken.body], [200, { login_ids: ["bob"] }]);
    const foreign = await provision("GET", "/logins", bob.userId, { token: aliceToken });
    assert.equal(foreign.status, 403, JSON.stringify(foreign.body));
    assert.ok(!logLines.some((l) => l.includes(PASSWORDS.bob)), "bob's password is not in the log");
  });

  it("both talk in a portal, each through their own session, not the bot", async () => {
    portalRoom = await alice.join(`#fake_lobby:${DOMAIN}`);
    assert.equal(await bob.join(`#fake_lobby:${DOMAIN}`), portalRoom);
    assert.equal(await carol.join(`#fake_lobby:${DOMAIN}`), portalRoom);
    await reaches(alice, portalRoom, "hello from alice", "alice", "lobby");
    await reaches(bob, portalRoom, "hello from bob", "bob", "lobby");
  });

  it("Carol, without a login, is told to log in; once Alice (a moderator) sets the relay, she is relayed", async () => {
    const unbridged = await carol.send(portalRoom, "is anyone there?");
    assert.equal(await notBridged(carol, portalRoom, unbridged), `not bridged: ${LOGIN_HINT}`);

    // At power level 0 Alice may not set the relay (the bot reads Synapse's power levels).
    await ask(alice, portalRoom, "!fake relay set", /^Only room moderators \(power level 50\)/);
    const levels = (await bot.state(portalRoom, "m.room.power_levels"))!;
    await bot.request(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(portalRoom)}/state/m.room.power_levels/`,
      { ...levels, users: { ...(levels.users as Record<string, number>), [alice.userId]: 50 } },
    );
    await ask(
      alice,
      portalRoom,
      "!fake relay set",
      "alice on fake now relays messages of people without a login in this room.",
    );
    await carol.send(portalRoom, "hi all, relayed");
    assert.deepEqual(
      await sentMatching("carol's relayed message", (s) => s.text.endsWith("hi all, relayed")),
      { as: "alice", room: "lobby", text: "<Carol Q> hi all, relayed", relayed: true },
    );
    assert.ok(!network.sent.some((s) => s.text.includes("relay set")), "commands never reach the network");
    assert.ok(!network.sent.some((s) => s.text.includes("anyone there")), "the unbridged one stayed so");
  });

  it("a DM opened by inviting a ghost: the ghost joins and Alice's message reaches bob through her session", async () => {
    const room = await createDirectRoom(alice, ghost("bob"));
    await joined(alice, room, [ghost("bob"), BOT]);
    assert.equal((await bridge!.portals.get(dmRoom("alice", "bob"), "alice"))?.roomId, room);
    await reaches(alice, room, "hi bob, just us", "alice", dmRoom("alice", "bob"));
  });

  it("a DM opened from the remote side: Alice is invited to a direct room with the ghost's message", async () => {
    await network.directMessage("dave", "alice", "psst, alice");
    // directMessage resolves once the session made the DM portal (its message may still be queued).
    const roomId = (await bridge!.portals.get(dmRoom("alice", "dave"), "alice"))?.roomId;
    assert.ok(roomId, "a DM portal of alice's login with dave");
    const invite = await poll(
      async () => {
        const sync = await alice.request<{
          rooms?: { invite?: Record<string, { invite_state: { events: MatrixEvent[] } }> };
        }>("GET", "/_matrix/client/v3/sync?timeout=0");
        return sync.rooms?.invite?.[roomId]?.invite_state.events.find(
          (e) => e.type === "m.room.member" && e.state_key === alice.userId,
        );
      },
      () => `alice has no invite to ${roomId}`,
    );
    assert.equal(invite.content.is_direct, true, "the invite is a direct chat's");
    assert.equal(invite.sender, BOT);
    await alice.join(roomId);
    await seen(
      alice,
      roomId,
      (e) => e.type === "m.room.message" && e.sender === ghost("dave") && e.content.body === "psst, alice",
      "dave's message",
    );
    await reaches(alice, roomId, "hello dave", "alice", dmRoom("alice", "dave"));
  });

  it("a restart on the same store reconnects every login, and messages still go through the sessions", async () => {
    const before = new Map(network.sessions);
    assert.deepEqual([...before.keys()].sort(), ["alice", "bob"]);
    await bridge!.stop();
    bridge = undefined;
    assert.equal(network.sessions.size, 0, "stop disconnects every session");
    assert.ok([...before.values()].every((s) => s.disconnected));
    // Login data is sealed at rest: no remote token in the sqlite files.
    const db = join(dir, "data", "logins.db");
    const files = [db, `${db}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f));
    assert.ok(files.length > 0, "the store file exists");
    for (const account of ["alice", "bob"]) {
      const token = network.accounts.get(account)!.token;
      assert.ok(!files.some((f) => f.includes(token)), `${account}'s token is not stored in the clear`);
    }

    const connectsBefore = network.connects;
    bridge = await startBridge();
    await bridge.loginsConnected();
    assert.equal(network.connects - connectsBefore, 2, "one connect per stored login");
    for (const account of ["alice", "bob"]) {
      const session = network.sessions.get(account);
      assert.ok(session && session !== before.get(account) && !session.disconnected, `${account} is back`);
    }
    assert.deepEqual(await whoamiLogins(bob.userId), [["bob", "CONNECTED"]]);
    await reaches(alice, portalRoom, "alice after the restart", "alice", "lobby");
    await reaches(bob, portalRoom, "bob after the restart", "bob", "lobby");
  });

  it("`logout` in the management room stops the session; Alice's next portal message gets the log-in notice", async () => {
    const session = network.sessions.get("alice")!;
    await ask(alice, managementRoom, "logout", "Logged out: alice on fake.");
    assert.equal(session.disconnected, true, "the session was disconnected");
    assert.equal(network.sessions.get("alice"), undefined);
    assert.ok(network.revoked.has("alice"), "the session's remote logout ran");
    assert.deepEqual((await provision("GET", "/logins", alice.userId)).body, { login_ids: [] });

    const sentBefore = network.sent.length;
    const after = await alice.send(portalRoom, "am I still here?");
    assert.equal(await notBridged(alice, portalRoom, after), `not bridged: ${LOGIN_HINT}`);
    await reaches(bob, portalRoom, "bob is still here", "bob", "lobby");
    assert.deepEqual(
      network.sent.slice(sentBefore),
      [{ as: "bob", room: "lobby", text: "bob is still here" }],
      "nothing of alice's went out, not even through her old relay",
    );
  });
});
