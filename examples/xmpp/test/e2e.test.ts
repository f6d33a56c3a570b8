/**
 * The XMPP example bridge end to end: a real prosody, a real Synapse, and the real bridge
 * process (`bridgekit start --config …` with the XMPP adapter) in between. Plain
 * @xmpp/client sessions play the XMPP users; a Matrix user registered on Synapse speaks the
 * client-server API with plain fetch.
 *
 * Needs root, the provisioned Synapse root (`bash scripts/synapse/provision.sh`) and prosody
 * (installed by scripts/services/ensure-prosody.sh if missing); fails, never skips, when any
 * of them is unavailable, with the services' log tails.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Element } from "@xmpp/client";
import { generateRegistration, type MatrixEvent, type Registration } from "matrix-bridgekit";
import { freePort, startSynapse, type SynapseInstance } from "../../../test/e2e/support/synapse.js";
import { startBridgeProcess, type BridgeProcess } from "../../../test/e2e/support/bridge-process.js";
import { DOMAIN as XMPP_DOMAIN, MUC_DOMAIN, Prosody } from "./prosody.js";
import { RemoteUser } from "./remote-user.js";
import {
  appserviceGet,
  appservicePushTransaction,
  waitForListener,
  ClientApiError,
  describeEvent,
  downloadWithoutToken,
  MatrixUser,
  writeXmppBridgeFiles,
} from "./e2e-support.js";

const SERVER = "localhost";
const ROOM = "lobby";
const ROOM_JID = `${ROOM}@${MUC_DOMAIN}`;
const ALIAS = `#xmpp_${ROOM}:${SERVER}`;
const BOT_USER = `@xmppbot:${SERVER}`;
const BRIDGE_NICK = "MatrixBridge";
const ACCOUNTS = { bridge: "bridge-secret-e2e", alice: "alice-pass-e2e", bob: "bob-pass-e2e" };
const ghost = (nick: string) => `@xmpp_${nick}:${SERVER}`;
/** How long to watch for duplicated messages or events after the exchange. */
const SETTLE_MS = 3000;

const NS_CORRECT = "urn:xmpp:message-correct:0";
const NS_SID = "urn:xmpp:sid:0";

/** A groupchat message in the room from the bridge's occupant. */
const fromBridge = (el: Element): boolean =>
  el.is("message") && el.attrs.type === "groupchat" && el.attrs.from === `${ROOM_JID}/${BRIDGE_NICK}`;

const isMessage = (e: MatrixEvent) => e.type === "m.room.message";
const bodyOf = (e: MatrixEvent) => (e.content as { body?: unknown }).body;
const relation = (e: MatrixEvent) =>
  (e.content as { "m.relates_to"?: { rel_type?: string; event_id?: string } })["m.relates_to"];

describe("XMPP bridge end to end: prosody <-> bridgekit start <-> Synapse", () => {
  let prosody: Prosody | undefined;
  let synapse: SynapseInstance | undefined;
  let bridge: BridgeProcess | undefined;
  /** Every bridge process this run started, oldest first (the restart test starts a second one). */
  const processes: BridgeProcess[] = [];
  let configPath: string;
  let registration: Registration;
  let appservicePort: number;
  let dir: string | undefined;
  const xmppUsers: RemoteUser[] = [];
  let alice: RemoteUser;
  let dana: MatrixUser;
  /** The body that carried Dana's file to XMPP. */
  let fileBody = "";
  let roomId: string;
  /** Dana's first message: its Matrix event id and the id the room saw on XMPP. */
  let danaFirst: { eventId: string; xmppId: string };

  /** Runs `fn`; a failure carries the bridge's, prosody's and Synapse's log tails. */
  const explain = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      e.message +=
        `\n--- bridge stdout (last lines) ---\n${bridge?.stdout().split("\n").slice(-40).join("\n") ?? "(not started)"}` +
        `\n--- bridge stderr ---\n${bridge?.stderr().slice(-2000) ?? ""}` +
        `\n--- prosody ---\n${(await prosody?.log())?.slice(-2000) ?? "(not started)"}` +
        `\n--- synapse ---\n${synapse?.logTail(30) ?? "(not started)"}`;
      throw e;
    }
  };

  /** Runs `bridgekit start --config <configPath>` and waits for "bridge started". */
  const startBridge = async (waitForStart = true) => {
    bridge = await startBridgeProcess(configPath, { waitForStart });
    processes.push(bridge);
  };

  before(() =>
    explain(async () => {
      dir = await mkdtemp(join(tmpdir(), "bk-xmpp-e2e-"));
      prosody = await Prosody.start(ACCOUNTS);
      // Alice makes the room and gives it a subject before the bridge exists: the bridge has
      // no fixed rooms, so the portal can only come from the alias query.
      alice = await RemoteUser.connect(prosody.service, "alice", ACCOUNTS.alice);
      xmppUsers.push(alice);
      await alice.join(ROOM, "alice");
      await alice.setSubject(ROOM, "Welcome to the lobby");
      await alice.waitFor(
        (el) => el.is("message") && el.getChildText("subject") === "Welcome to the lobby",
        "the subject echoed",
      );

      appservicePort = await freePort();
      registration = generateRegistration({
        id: "xmpp-e2e",
        url: `http://127.0.0.1:${appservicePort}`,
        domain: SERVER,
        senderLocalpart: "xmppbot",
        ghosts: "xmpp_{id}",
        portals: "xmpp_{id}",
      });
      synapse = await startSynapse({ registrations: [registration], serverName: SERVER });
      ({ configPath } = await writeXmppBridgeFiles(dir, {
        homeserverUrl: synapse.url,
        domain: SERVER,
        appservicePort,
        registration,
        extraConfig: {
          media: { publicUrl: `http://127.0.0.1:${appservicePort}`, linkKey: "xmpp-e2e-media-link-key-0123" },
        },
        adapterConfig: {
          service: prosody.service,
          domain: XMPP_DOMAIN,
          username: "bridge",
          password: ACCOUNTS.bridge,
          mucDomain: MUC_DOMAIN,
          nick: BRIDGE_NICK,
          rooms: [],
          timeoutMs: 20_000,
          reconnectDelayMs: 100,
          reconnectMaxDelayMs: 1000,
        },
      }));
      await startBridge();

      const user = await synapse.registerUser("dana");
      dana = new MatrixUser(synapse.url, user.userId, user.accessToken);
      await dana.setDisplayName("Dana Matrix");
    }),
  );

  after(async () => {
    for (const user of xmppUsers) await user.stop();
    const status = await bridge?.stop();
    await synapse?.stop();
    await prosody?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    assert.deepEqual(status ?? { code: 0, signal: null }, { code: 0, signal: null }, "the bridge's exit");
  });

  it("joining #xmpp_lobby makes the bridge join the MUC and creates the portal", () =>
    explain(async () => {
      roomId = await dana.join(ALIAS);
      assert.match(roomId, /^!/);
      // The alias query made the bridge join the room on XMPP.
      await alice.waitForOccupant(ROOM, BRIDGE_NICK);
      // The portal: the room's subject as its topic, the bot and Alice's ghost in it.
      assert.equal((await dana.state(roomId, "m.room.topic"))?.topic, "Welcome to the lobby");
      assert.equal((await dana.state(roomId, "m.room.name"))?.name, ROOM);
      const members = await dana.joinedMembers(roomId);
      for (const expected of [BOT_USER, ghost("alice"), dana.userId])
        assert.ok(members.includes(expected), `${expected} not joined; members: ${members.join(", ")}`);
      const profile = await dana.request("GET", `/_matrix/client/v3/profile/${ghost("alice")}`);
      assert.equal(profile.displayname, "alice");
      const resolved = await dana.request<{ room_id: string }>(
        "GET",
        `/_matrix/client/v3/directory/room/${encodeURIComponent(ALIAS)}`,
      );
      assert.equal(resolved.room_id, roomId);
    }));

  it("an alias of a room that does not exist is not found", () =>
    explain(async () => {
      await assert.rejects(dana.join(`#xmpp_nosuchroom:${SERVER}`), (err: unknown) => {
        assert.ok(err instanceof ClientApiError, String(err));
        assert.equal(err.status, 404, err.message);
        return true;
      });
    }));

  it("a Matrix message reaches XMPP as <displayname> text", () =>
    explain(async () => {
      const eventId = await dana.send(roomId, "hello from matrix");
      const el = await alice.waitForMessage(ROOM, (body) => body === "<Dana Matrix> hello from matrix");
      assert.ok(fromBridge(el), `sent by ${el.attrs.from}`);
      const originId = el.getChild("origin-id", NS_SID)?.attrs.id;
      assert.ok(originId, `no origin-id on ${el.toString()}`);
      // XEP-0308 clients reference the message's id; the bridge makes it equal to the origin-id.
      assert.equal(el.attrs.id, originId);
      danaFirst = { eventId, xmppId: originId };
    }));

  it("a Matrix edit arrives on XMPP as an XEP-0308 correction of the right message", () =>
    explain(async () => {
      await dana.edit(roomId, danaFirst.eventId, "hello from matrix, edited");
      const el = await alice.waitForMessage(
        ROOM,
        (body) => body === "<Dana Matrix> hello from matrix, edited",
      );
      assert.ok(fromBridge(el), `sent by ${el.attrs.from}`);
      const replace = el.getChild("replace", NS_CORRECT);
      assert.ok(replace, `not a correction: ${el.toString()}`);
      assert.equal(replace.attrs.id, danaFirst.xmppId);
    }));

  it("a Matrix file reaches XMPP as a link the bridge serves, which opens without a token", () =>
    explain(async () => {
      const data = Buffer.from(`a file from Matrix ${"y".repeat(5000)}`);
      await dana.sendFile(roomId, data, "notes.txt", "text/plain");
      await alice.waitForMessage(ROOM, (body) => body.includes("notes.txt"));
      fileBody = alice.stanzas
        .filter(fromBridge)
        .map((el) => el.getChildText("body") ?? "")
        .find((b) => b.includes("notes.txt"))!;
      const m =
        /^<Dana Matrix> sent a file: notes\.txt (http:\/\/127\.0\.0\.1:\d+\/_bridgekit\/media\/v1\/\S+\/notes\.txt)$/.exec(
          fileBody,
        );
      assert.ok(m, fileBody);
      assert.deepEqual(await downloadWithoutToken(m[1]!), data);
    }));

  it("an XMPP message appears in Matrix from the ghost; a correction is an m.replace edit of it", () =>
    explain(async () => {
      await alice.say(ROOM, "first xmpp line");
      const xmppId = await alice.say(ROOM, "helo from xmpp");
      await alice.say(ROOM, "another xmpp line");
      const original = await dana.waitForEvent(
        roomId,
        (e) => isMessage(e) && bodyOf(e) === "helo from xmpp",
        "relayed XMPP message",
      );
      assert.equal(original.sender, ghost("alice"));
      assert.equal((original.content as { msgtype?: string }).msgtype, "m.text");

      await alice.say(ROOM, "hello from xmpp (fixed)", { replaces: xmppId });
      const edit = await dana.waitForEvent(
        roomId,
        (e) => isMessage(e) && e.sender === ghost("alice") && relation(e)?.rel_type === "m.replace",
        "edit from XMPP",
      );
      assert.equal(edit.sender, ghost("alice"));
      assert.equal(
        relation(edit)?.event_id,
        original.event_id,
        `edit of the wrong event: ${describeEvent(edit)}`,
      );
      assert.deepEqual((edit.content as { "m.new_content"?: unknown })["m.new_content"], {
        msgtype: "m.text",
        body: "hello from xmpp (fixed)",
      });
    }));

  it("an occupant joining and leaving makes the ghost join and leave", () =>
    explain(async () => {
      const bob = await RemoteUser.connect(prosody!.service, "bob", ACCOUNTS.bob);
      xmppUsers.push(bob);
      await bob.join(ROOM, "bob");
      const isBob = (membership: string) => (e: MatrixEvent) =>
        e.type === "m.room.member" && e.state_key === ghost("bob") && e.content.membership === membership;
      const joined = await dana.waitForEvent(roomId, isBob("join"), "ghost join of bob");
      assert.equal(joined.sender, ghost("bob"));
      assert.ok((await dana.joinedMembers(roomId)).includes(ghost("bob")));

      await bob.leave(ROOM, "bob");
      const left = await dana.waitForEvent(roomId, isBob("leave"), "ghost leave of bob");
      assert.equal(left.sender, ghost("bob"));
      assert.ok(!(await dana.joinedMembers(roomId)).includes(ghost("bob")));
    }));

  it("a subject change on XMPP sets the Matrix topic", () =>
    explain(async () => {
      await alice.setSubject(ROOM, "Subject set on XMPP");
      const event = await dana.waitForEvent(
        roomId,
        (e) => e.type === "m.room.topic" && e.content.topic === "Subject set on XMPP",
        "topic change",
      );
      // Set by Alice's ghost, or by the bot for her when the ghost lacks the power level.
      assert.ok([ghost("alice"), BOT_USER].includes(event.sender), `topic set by ${event.sender}`);
      assert.equal((await dana.state(roomId, "m.room.topic"))?.topic, "Subject set on XMPP");
    }));

  it("a topic change on Matrix sets the room's subject on XMPP", () =>
    explain(async () => {
      // Portals give Matrix users no power over state; the room's admin (the bridge's bot, here
      // through the appservice's token) lets Dana change the topic.
      const bot = new MatrixUser(synapse!.url, BOT_USER, registration.as_token);
      const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.power_levels/`;
      const levels = await bot.request<{ users?: Record<string, number> }>("GET", path);
      await bot.request("PUT", path, { ...levels, users: { ...levels.users, [dana.userId]: 50 } });

      await dana.setTopic(roomId, "Topic set on Matrix");
      const el = await alice.waitFor(
        (s) => s.is("message") && s.getChildText("subject") === "Topic set on Matrix",
        "subject change from the bridge",
      );
      assert.equal(el.attrs.from, `${ROOM_JID}/${BRIDGE_NICK}`);
    }));

  it("the URI queries through the appservice answer the ghost and the portal alias", () =>
    explain(async () => {
      const get = (path: string, token: string | null = registration.hs_token) =>
        appserviceGet(appservicePort, token, path);
      const uri = (u: string) => encodeURIComponent(u);

      assert.deepEqual(await get(`/_matrix/app/v1/user?uri=${uri(`xmpp:${ROOM_JID}/alice`)}`), {
        status: 200,
        body: { user_id: ghost("alice") },
      });
      assert.deepEqual(await get(`/_matrix/app/v1/alias?uri=${uri(`xmpp:${ROOM_JID}`)}`), {
        status: 200,
        body: { alias: ALIAS },
      });
      assert.deepEqual(await get(`/_matrix/app/v1/alias?uri=${uri(`xmpp:${ROOM_JID}?join`)}`), {
        status: 200,
        body: { alias: ALIAS },
      });
      // Another MUC service is not ours; a room URI is not a user.
      assert.equal(
        (await get(`/_matrix/app/v1/user?uri=${uri("xmpp:lobby@muc.example.net/alice")}`)).status,
        404,
      );
      assert.equal((await get(`/_matrix/app/v1/user?uri=${uri(`xmpp:${ROOM_JID}`)}`)).status, 404);
      // The homeserver's credentials are required.
      const anonymous = await get(`/_matrix/app/v1/user?uri=${uri(`xmpp:${ROOM_JID}/alice`)}`, null);
      assert.equal(anonymous.status, 401, JSON.stringify(anonymous.body));
      const wrong = await get(`/_matrix/app/v1/user?uri=${uri(`xmpp:${ROOM_JID}/alice`)}`, "not-the-token");
      assert.equal(wrong.status, 403, JSON.stringify(wrong.body));
    }));

  it("nothing echoes: every message and event arrived exactly once", () =>
    explain(async () => {
      // One more round trip each way, then give anything that would loop time to.
      await dana.send(roomId, "last matrix line");
      await alice.say(ROOM, "last xmpp line");
      await alice.waitForMessage(ROOM, (body) => body === "<Dana Matrix> last matrix line");
      await dana.waitForEvent(
        roomId,
        (e) => isMessage(e) && bodyOf(e) === "last xmpp line",
        "last XMPP line",
      );
      await new Promise((r) => setTimeout(r, SETTLE_MS));

      // XMPP side: exactly Dana's messages from the bridge's occupant, one subject change.
      const fromTheBridge = alice.stanzas.filter(fromBridge);
      assert.deepEqual(
        fromTheBridge.filter((el) => el.getChildText("body") !== null).map((el) => el.getChildText("body")),
        [
          "<Dana Matrix> hello from matrix",
          "<Dana Matrix> hello from matrix, edited",
          fileBody,
          "<Dana Matrix> last matrix line",
        ],
      );
      assert.deepEqual(
        fromTheBridge
          .filter((el) => el.getChildText("subject") !== null)
          .map((el) => el.getChildText("subject")),
        ["Topic set on Matrix"],
      );

      // Matrix side: each XMPP message once, from the ghost; each of Dana's messages once.
      const timeline = await dana.timeline(roomId);
      const bodies = (sender: string) =>
        timeline.filter((e) => isMessage(e) && e.sender === sender).map(bodyOf);
      assert.deepEqual(bodies(ghost("alice")), [
        "first xmpp line",
        "helo from xmpp",
        "another xmpp line",
        "* hello from xmpp (fixed)",
        "last xmpp line",
      ]);
      assert.deepEqual(bodies(dana.userId), [
        "hello from matrix",
        "* hello from matrix, edited",
        "notes.txt",
        "last matrix line",
      ]);
      assert.deepEqual(bodies(BOT_USER), [], "the bot posted into the room");
      const topics = timeline.filter((e) => e.type === "m.room.topic").map((e) => e.content.topic);
      assert.deepEqual(topics, ["Welcome to the lobby", "Subject set on XMPP", "Topic set on Matrix"]);
    }));

  it("after a restart the bridge rejoins the room and delivers what Matrix sent meanwhile", () =>
    explain(async () => {
      const bridgePresences = (available: boolean) =>
        alice.stanzas.filter(
          (el) =>
            el.is("presence") &&
            el.attrs.from === `${ROOM_JID}/${BRIDGE_NICK}` &&
            (el.attrs.type === "unavailable") === !available,
        ).length;
      const joinsBefore = bridgePresences(true);
      assert.deepEqual(await bridge!.stop(), { code: 0, signal: null }, "the bridge's exit on SIGTERM");
      // A clean stop leaves the room.
      await alice.waitFor(() => bridgePresences(false) > 0, "the bridge leaving the room");
      // Synapse cannot deliver this now; it keeps the transaction and retries it.
      await dana.send(roomId, "sent while the bridge was down");
      await startBridge(false);
      // An event pushed while the bridge is still logging in to XMPP waits for the session (it
      // is not failed with a 500, which the homeserver would retry only after a backoff).
      await waitForListener(appservicePort);
      assert.equal(
        bridge!.logs().find((l) => l.msg === "bridge started"),
        undefined,
        "the bridge had started before the test could push an event during its start-up",
      );
      const pushed = await appservicePushTransaction(appservicePort, registration.hs_token, "e2e-startup-1", [
        {
          event_id: `$e2e-startup-${process.pid}`,
          type: "m.room.message",
          room_id: roomId,
          sender: dana.userId,
          origin_server_ts: Date.now(),
          content: { msgtype: "m.text", body: "pushed while the bridge was starting" },
        },
      ]);
      assert.equal(pushed.status, 200, pushed.text);
      await bridge!.waitForLog((l) => l.msg === "bridge started", 60_000);
      await alice.waitForMessage(
        ROOM,
        (body) => body === "<Dana Matrix> pushed while the bridge was starting",
      );
      // The room joined on demand is remembered (in the store) and rejoined at start.
      await alice.waitFor(() => bridgePresences(true) > joinsBefore, "the bridge rejoining the room");
      await alice.waitForMessage(
        ROOM,
        (body) => body === "<Dana Matrix> sent while the bridge was down",
        45_000,
      );
      await alice.say(ROOM, "after the restart");
      const event = await dana.waitForEvent(
        roomId,
        (e) => isMessage(e) && bodyOf(e) === "after the restart",
        "XMPP message after the restart",
      );
      assert.equal(event.sender, ghost("alice"));
      // The same portal: the alias still points at the room, Alice's ghost never left it.
      const resolved = await dana.request<{ room_id: string }>(
        "GET",
        `/_matrix/client/v3/directory/room/${encodeURIComponent(ALIAS)}`,
      );
      assert.equal(resolved.room_id, roomId);
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const relayed = alice.stanzas.filter(
        (el) => fromBridge(el) && el.getChildText("body") === "<Dana Matrix> sent while the bridge was down",
      );
      assert.equal(relayed.length, 1, "the message sent during the downtime reached XMPP more than once");
      const pushedRelayed = alice.stanzas.filter(
        (el) =>
          fromBridge(el) && el.getChildText("body") === "<Dana Matrix> pushed while the bridge was starting",
      );
      assert.equal(pushedRelayed.length, 1, "the event pushed during start-up reached XMPP more than once");
      const timeline = await dana.timeline(roomId);
      const aliceLeaves = timeline.filter(
        (e) =>
          e.type === "m.room.member" && e.state_key === ghost("alice") && e.content.membership !== "join",
      );
      assert.deepEqual(aliceLeaves.map(describeEvent), [], "alice's ghost left across the restart");
      const afterRestart = timeline.filter((e) => isMessage(e) && bodyOf(e) === "after the restart");
      assert.equal(afterRestart.length, 1);
    }));

  it("the bridge logged no errors", () =>
    explain(async () => {
      const errors = processes.flatMap((p) => p.logs()).filter((l) => (l.level ?? 0) >= 50);
      assert.deepEqual(errors, []);
      await Promise.resolve();
    }));
});
