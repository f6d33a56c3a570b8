// Double puppeting of logins end to end (issue #15): a real Synapse that loaded a second,
// double-puppet registration beside the bridge's own, and an in-process Bridge with the fake
// logins network (test/support/fake-network.ts). What Alice's session sends from her own
// remote account (she wrote from another client: `session.ctx.send(room, "alice", text)`)
// must appear in Matrix as @alice herself, marked with fi.mau.double_puppet_source, and
// must not come back to the network when Synapse pushes it to the bridge.
//
// First the bridge runs with doublePuppet.registration (the appservice method): Alice's own
// messages in a portal, and a DM from the remote side that her puppet joins. Then it restarts
// on the same store without it (the token method): a bad `login-matrix` token is answered
// clearly and her own messages stay her ghost's; a good token makes them hers; when that
// token is logged out, they are her ghost's again and she is told once; the token's bytes are
// in no sqlite file (the inbox records the command without its content). The steps share one
// Synapse and run in order. The same paths on the fake homeserver: "double puppeting" in
// test/unit/bridge/logins.test.ts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Bridge } from "../../src/bridge/index.js";
import { loadConfig } from "../../src/config/load.js";
import type { MatrixEvent } from "../../src/matrix/events.js";
import { saveRegistration, type Registration } from "../../src/registration/index.js";
import { DOUBLE_PUPPET_SOURCE_KEY } from "../../src/users/double-puppet.js";
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
/** The bridge's registration id: the value of its puppets' fi.mau.double_puppet_source mark. */
const REG_ID = "fake-dp";
const ENCRYPTION_KEY = "e2e-double-puppet-encryption-key-0123";
const PASSWORD = "alice-remote-pw-2718";
const BAD_TOKEN = "syt_YWxpY2U_this_is_no_token_4242";

describe("double puppeting of logins through Synapse: the appservice method, a token by login-matrix, a bad token", () => {
  let dir: string;
  let port: number;
  let reg: Registration;
  let synapse: SynapseInstance | undefined;
  let bridge: Bridge | undefined;
  const network = new FakeNetwork();
  const log = capturedLog();
  const { reaches, seen, isNotice, ask, redacted } = loginsWaits({
    network,
    botUserId: BOT,
    logTail: log.tail,
  });
  let alice: MatrixUser;
  /** The appservice's bot, through the client-server API with the as_token. */
  let bot: MatrixUser;
  let managementRoom = "";
  let portalRoom = "";
  /** The token Alice hands over with login-matrix (a second device of hers). */
  let secondToken = "";
  const ghost = (remoteId: string) => `@fake_${remoteId}:${DOMAIN}`;

  async function startBridge(config: "with-double-puppet.yaml" | "without-double-puppet.yaml") {
    const started = await Bridge.fromConfig(await loadConfig(join(dir, config), {}), {
      registration: reg,
      adapter: loginsAdapter(network),
      logger: log.logger,
    });
    await started.start();
    return started;
  }

  /**
   * Alice's session reports `text` written by her own remote account (from another client), or
   * by `from`, in `remoteRoom`; resolves with the one event of that text Alice then sees in `roomId`.
   */
  async function fromOtherClient(
    remoteRoom: string,
    roomId: string,
    text: string,
    from = "alice",
  ): Promise<MatrixEvent> {
    const session = network.sessions.get("alice");
    assert.ok(session && !session.disconnected, "alice's session is connected");
    await session.ctx.send(remoteRoom, from, text);
    const event = await seen(
      alice,
      roomId,
      (e) => e.type === "m.room.message" && e.content.body === text,
      JSON.stringify(text),
    );
    const copies = (await alice.timeline(roomId, 100)).filter((e) => e.content.body === text);
    assert.equal(copies.length, 1, `one event says ${JSON.stringify(text)}, not a puppet's and a ghost's`);
    return event;
  }

  /** Asserts the event is Alice's own, sent by this bridge's double puppet. */
  function isAlicesPuppet(e: MatrixEvent): void {
    assert.equal(e.sender, alice.userId, `${e.event_id} is sent as alice herself`);
    assert.equal(e.content[DOUBLE_PUPPET_SOURCE_KEY], REG_ID, "it carries the bridge's double-puppet mark");
  }

  /** Asserts the event was sent by Alice's ghost, unmarked. */
  function isAlicesGhost(e: MatrixEvent): void {
    assert.equal(e.sender, ghost("alice"), `${e.event_id} is sent as alice's ghost`);
    assert.equal(e.content[DOUBLE_PUPPET_SOURCE_KEY], undefined, "a ghost's message carries no puppet mark");
  }

  /**
   * Synapse pushes the puppet's event back to the bridge. Alice then writes from Matrix in the
   * same room: once that reaches the network, the bridge has handled the echo before it (one
   * room's events are handled in order), and the echo must not have gone out.
   */
  async function noEcho(roomId: string, remoteRoom: string, echoed: string, later: string): Promise<void> {
    await reaches(alice, roomId, later, "alice", remoteRoom);
    assert.deepEqual(
      network.sent.filter((s) => s.text === echoed),
      [],
      "the puppet's own event did not go back to the remote network",
    );
  }

  /** The bot's notices about double puppeting in the management room after `eventId`. */
  async function puppetNotices(afterEventId: string): Promise<string[]> {
    const timeline = await alice.timeline(managementRoom, 100);
    const from = timeline.findIndex((e) => e.event_id === afterEventId);
    assert.ok(from >= 0, `${afterEventId} is in the last 100 events of the management room`);
    return timeline
      .slice(from + 1)
      .filter((e) => isNotice(e) && /double puppeting/i.test(String(e.content.body)))
      .map((e) => String(e.content.body));
  }

  /** The rows (as JSON) of any table of the sqlite store that hold `secret`, read beside the bridge. */
  function storedRowsWith(secret: string): string[] {
    const db = new Database(join(dir, "data", "logins.db"), { readonly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{
        name: string;
      }>;
      return tables.flatMap(({ name }) =>
        db
          .prepare(`SELECT * FROM "${name}"`)
          .all()
          .map((row) => `${name}: ${JSON.stringify(row)}`)
          .filter((row) => row.includes(secret)),
      );
    } finally {
      db.close();
    }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bk-e2e-logins-dp-"));
    port = await freePort();
    reg = loginsRegistration(REG_ID, port, DOMAIN);
    synapse = await startSynapse({ registrations: [reg], doublePuppet: true, serverName: DOMAIN });
    // The file `bridgekit generate-registration --double-puppet` writes, holding the one Synapse loaded.
    await saveRegistration(join(dir, "doublepuppet.yaml"), synapse.doublePuppet!);
    const base = {
      homeserverUrl: synapse.url,
      domain: DOMAIN,
      port,
      store: "sqlite://data/logins.db",
      encryptionKey: ENCRYPTION_KEY,
    };
    await writeFile(
      join(dir, "with-double-puppet.yaml"),
      loginsConfigYaml({ ...base, extra: ["doublePuppet: { registration: doublepuppet.yaml }"] }),
    );
    await writeFile(join(dir, "without-double-puppet.yaml"), loginsConfigYaml(base));
    network.addAccount("alice", PASSWORD);
    network.addAccount("dave", "dave-remote-pw");
    const a = await synapse.registerUser("alice");
    alice = new MatrixUser(synapse.url, a.userId, a.accessToken);
    bot = new MatrixUser(synapse.url, BOT, reg.as_token);
    bridge = await startBridge("with-double-puppet.yaml");
  });

  after(async () => {
    await bridge?.stop();
    await synapse?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("appservice method: what Alice writes from another client appears as her, marked, and is no echo", async () => {
    managementRoom = await createDirectRoom(alice, BOT);
    await seen(
      alice,
      managementRoom,
      (e) => isNotice(e) && String(e.content.body).startsWith("Hello! I am the fake bridge bot."),
      "greeting",
    );
    await ask(alice, managementRoom, "login", /^Log in to the fake network\.\nUsername\?/);
    await ask(alice, managementRoom, "alice", /^Password\? I will remove your message/);
    await ask(alice, managementRoom, PASSWORD, "Logged in as alice on fake.");
    portalRoom = await alice.join(`#fake_lobby:${DOMAIN}`);

    isAlicesPuppet(await fromOtherClient("lobby", portalRoom, "written on alice's phone"));
    // Another remote account in the same session is a ghost, as ever.
    const daves = await fromOtherClient("lobby", portalRoom, "dave was here", "dave");
    assert.equal(daves.sender, ghost("dave"));
    await noEcho(portalRoom, "lobby", "written on alice's phone", "alice writes from Matrix");
    assert.ok(
      !network.sent.some((s) => s.text === "dave was here"),
      "the remote side's own messages are not sent back either",
    );
    assert.ok(
      !log.lines.some((l) => l.includes(synapse!.doublePuppet!.as_token)),
      "the as_token is not logged",
    );
  });

  it("a remote DM to Alice's login: her puppet joins her to the new DM portal, where her own messages are hers", async () => {
    await network.directMessage("dave", "alice", "psst, alice");
    // directMessage resolves once the session made the DM portal (and the puppet joined).
    const roomId = (await bridge!.portals.get(dmRoom("alice", "dave"), "alice"))?.roomId;
    assert.ok(roomId, "a DM portal of alice's login with dave");
    // Alice's client never joined: the membership is the puppet's doing.
    assert.equal((await bot.state(roomId, "m.room.member", alice.userId))?.membership, "join");
    const timeline = await alice.timeline(roomId, 100);
    const own = (membership: string) =>
      timeline.find(
        (e) =>
          e.type === "m.room.member" && e.state_key === alice.userId && e.content.membership === membership,
      );
    assert.equal(own("invite")?.sender, BOT, "the bot invited her");
    assert.equal(own("invite")?.content.is_direct, true, "to a direct chat");
    assert.equal(own("join")?.sender, alice.userId, "she joined as herself");
    await seen(
      alice,
      roomId,
      (e) => e.type === "m.room.message" && e.sender === ghost("dave") && e.content.body === "psst, alice",
      "dave's message",
    );
    isAlicesPuppet(await fromOtherClient(dmRoom("alice", "dave"), roomId, "psst back, from my phone"));
    await noEcho(roomId, dmRoom("alice", "dave"), "psst back, from my phone", "and from Matrix");
  });

  it("without the registration, a bad login-matrix token is answered clearly, and her own messages stay her ghost's", async () => {
    await bridge!.stop();
    bridge = await startBridge("without-double-puppet.yaml");
    await bridge.loginsConnected();

    const { eventId, notice } = await ask(
      alice,
      managementRoom,
      `login-matrix ${BAD_TOKEN}`,
      /^Double puppeting for @alice:localhost failed: the homeserver refused the token: 401 M_UNKNOWN_TOKEN/,
    );
    assert.ok(!String(notice.content.body).includes(BAD_TOKEN), "the answer does not repeat the token");
    await redacted(alice, managementRoom, eventId, "the token");
    assert.equal(
      await bridge.users.getDoublePuppetToken(alice.userId),
      undefined,
      "a refused token is not kept",
    );

    isAlicesGhost(await fromOtherClient("lobby", portalRoom, "ghostly one"));
    isAlicesGhost(await fromOtherClient("lobby", portalRoom, "ghostly two"));
    assert.equal((await puppetNotices(eventId)).length, 1, "the answer is the one notice about it");
    assert.ok(!log.lines.some((l) => l.includes(BAD_TOKEN)), "the token is not logged");
  });

  it("token method: login-matrix with a token of hers (redacted), then what she writes elsewhere appears as her", async () => {
    secondToken = await synapse!.login("alice");
    const { eventId } = await ask(
      alice,
      managementRoom,
      `login-matrix ${secondToken}`,
      "Double puppeting is on: what you send from other clients appears as you.",
    );
    await redacted(alice, managementRoom, eventId, "the token");
    assert.equal(await bridge!.users.getDoublePuppetToken(alice.userId), secondToken, "the token is kept");
    // Sealed: no row of the store holds it (once the inbox has let go of the event that carried it).
    let rows: string[] = [];
    await poll(
      () => Promise.resolve((rows = storedRowsWith(secondToken)).length === 0 || undefined),
      () => `rows of the store hold the token:\n${rows.join("\n")}`,
      5000,
    );
    assert.ok(!log.lines.some((l) => l.includes(secondToken)), "the token is not logged");

    isAlicesPuppet(await fromOtherClient("lobby", portalRoom, "written on the tablet"));
    await noEcho(portalRoom, "lobby", "written on the tablet", "back on Matrix");
  });

  it("the token's bytes are not left in the sqlite files either (the inbox records the command without it)", () => {
    const db = join(dir, "data", "logins.db");
    const files = [db, `${db}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f));
    assert.ok(files.length > 0, "the store file exists");
    assert.deepEqual(
      files.map((f) => f.includes(secondToken)),
      files.map(() => false),
      "no sqlite file (database, WAL) holds the token",
    );
  });

  it("when that token is logged out, her own messages are her ghost's again and she is told once why", async () => {
    const before = await alice.send(managementRoom, "ping");
    await new MatrixUser(synapse!.url, alice.userId, secondToken).request(
      "POST",
      "/_matrix/client/v3/logout",
      {},
    );
    isAlicesGhost(await fromOtherClient("lobby", portalRoom, "after the logout, one"));
    isAlicesGhost(await fromOtherClient("lobby", portalRoom, "after the logout, two"));
    const told = await puppetNotices(before);
    assert.equal(told.length, 1, told.join("\n"));
    assert.match(
      told[0]!,
      /^[Dd]ouble puppeting for @alice:localhost failed: the homeserver refused the token: 401 M_UNKNOWN_TOKEN.*appears as your ghost until it works again; send `login-matrix <token>` with a fresh access token\.$/s,
    );
    assert.ok(!told[0]!.includes(secondToken), "the notice does not show the token");
    assert.ok(
      !network.sent.some((s) => s.text.startsWith("after the logout")),
      "the ghost's messages are no echo either",
    );
  });
});
