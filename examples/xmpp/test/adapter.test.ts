/**
 * The XMPP adapter against a real prosody (started by the test, see prosody.ts): login and MUC
 * joins, both directions of messages, occupants, subjects, queryRoom, start failures and
 * reconnecting after the server restarts. Remote users are plain @xmpp/client sessions; the
 * bridge side is a RecordingContext.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  silentLogger,
  type Portal,
  type MatrixEdit,
  type MatrixMessage,
  type MatrixRoomChange,
} from "matrix-bridgekit";
import { RecordingContext, type RecordedCall } from "../../../test/support/recording-context.js";
import factory, { type XmppAdapter } from "../src/adapter.js";
import { DOMAIN, MUC_DOMAIN, Prosody, freePort } from "./prosody.js";
import { RemoteUser } from "./remote-user.js";
import type { Element } from "@xmpp/client";

const BRIDGE_NICK = "MatrixBridge";
const ACCOUNTS = { bridge: "bridge-secret-1", alice: "alice-pass", bob: "bob-pass" };

async function makeAdapter(service: string, extra: Record<string, unknown> = {}): Promise<XmppAdapter> {
  return (await factory({
    config: {
      service,
      domain: DOMAIN,
      username: "bridge",
      password: ACCOUNTS.bridge,
      mucDomain: MUC_DOMAIN,
      nick: BRIDGE_NICK,
      rooms: ["lobby"],
      timeoutMs: 5000,
      reconnectDelayMs: 100,
      reconnectMaxDelayMs: 1000,
      ...extra,
    },
    log: silentLogger(),
    configDir: import.meta.dirname,
  })) as XmppAdapter;
}

const sender = { userId: "@alice:example.org", displayName: "Matrix Alice" };
const raw = {
  event_id: "$x",
  type: "m.room.message",
  room_id: "!r:example.org",
  sender: sender.userId,
  origin_server_ts: 0,
  content: {},
};

function matrixMessage(body: string, msgtype = "m.text"): MatrixMessage {
  return { eventId: `$${body.length}-${Date.now()}`, sender, ts: Date.now(), msgtype, body, raw };
}

const sends = (ctx: RecordingContext, room: string) =>
  ctx.calls.filter((c) => c.method === "send" && c.room === room);
const bodyOf = (call: RecordedCall): string => {
  const content = call.args[0] as string | { body: string };
  return typeof content === "string" ? content : content.body;
};

describe("XMPP adapter against a real prosody", () => {
  let prosody: Prosody;
  let ctx: RecordingContext;
  let adapter: XmppAdapter;
  let alice: RemoteUser;
  let bob: RemoteUser | null = null;

  before(async () => {
    prosody = await Prosody.start(ACCOUNTS);
    ctx = new RecordingContext({ domain: "example.org", ghosts: "xmpp_{id}", portals: "xmpp_{id}" });
    adapter = await makeAdapter(prosody.service);
    await adapter.start(ctx);
    alice = await RemoteUser.connect(prosody.service, "alice", ACCOUNTS.alice);
  });

  after(async () => {
    await adapter?.stop();
    await alice?.stop();
    await bob?.stop();
    await prosody?.stop();
  });

  it("logs in, joins the fixed room (creating it) and makes its portal", async () => {
    const ensure = ctx.calls.find((c) => c.method === "ensurePortal");
    assert.equal(ensure?.room, "lobby", "portals.ensure was called for the fixed room");
    assert.deepEqual(ensure.args[0], { name: "lobby", visibility: "public", members: [] });
    assert.equal((await ctx.portals.get("lobby"))?.alias, "#xmpp_lobby:example.org");
    await alice.join("lobby", "alice");
    await alice.waitForOccupant("lobby", BRIDGE_NICK);
    // Alice's arrival reaches the bridge as a ghost join.
    await ctx.waitFor((c) => c.method === "join" && c.room === "lobby" && c.from === "alice");
    await ctx.waitFor((c) => c.method === "setProfile" && c.from === "alice");
  });

  it("relays a groupchat message with the nick, body and message id", async () => {
    const id = await alice.say("lobby", "hello from xmpp");
    const call = await ctx.waitFor(
      (c) => c.method === "send" && c.room === "lobby" && bodyOf(c) === "hello from xmpp",
    );
    assert.equal(call.from, "alice");
    assert.equal(call.args[0], "hello from xmpp");
    assert.deepEqual(call.args[1], { remoteId: id });
  });

  it("relays /me as m.emote and an XEP-0308 correction as an edit", async () => {
    await alice.say("lobby", "/me waves");
    const emote = await ctx.waitFor(
      (c) => c.method === "send" && c.room === "lobby" && bodyOf(c) === "waves",
    );
    assert.deepEqual(emote.args[0], { msgtype: "m.emote", body: "waves" });
    const original = await alice.say("lobby", "helo");
    await alice.say("lobby", "hello (fixed)", { replaces: original });
    const edit = await ctx.waitFor((c) => c.method === "edit" && c.room === "lobby");
    assert.equal(edit.from, "alice");
    assert.equal(edit.args[0], original);
    assert.equal(edit.args[1], "hello (fixed)");
  });

  it("sends Matrix messages as <name> text, and does not echo the room's reflection", async () => {
    const portal = ctx.portal("lobby");
    const id = await adapter.onMessage(matrixMessage("hi xmpp"), portal);
    const got = await alice.waitForMessage("lobby", (b) => b === "<Matrix Alice> hi xmpp");
    assert.equal(got.attrs.from, `lobby@${MUC_DOMAIN}/${BRIDGE_NICK}`);
    assert.equal(got.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id, id);
    // The room delivers in order: once alice's next message arrives, the reflection has too.
    await alice.say("lobby", "marker after reflection");
    await ctx.waitFor((c) => c.method === "send" && bodyOf(c) === "marker after reflection");
    assert.equal(
      sends(ctx, "lobby").filter((c) => bodyOf(c).includes("hi xmpp")).length,
      0,
      "the bridge's own message came back into Matrix",
    );

    await adapter.onMessage(matrixMessage("waves back", "m.emote"), portal);
    await alice.waitForMessage("lobby", (b) => b === "/me Matrix Alice waves back");

    const edit: MatrixEdit = {
      eventId: "$edit",
      sender,
      ts: Date.now(),
      target: { eventId: "$orig", remoteId: id },
      msgtype: "m.text",
      body: "hi xmpp, edited",
      raw,
    };
    await adapter.onEdit(edit, portal);
    const correction = await alice.waitForMessage("lobby", (b) => b === "<Matrix Alice> hi xmpp, edited");
    assert.equal(correction.getChild("replace", "urn:xmpp:message-correct:0")?.attrs.id, id);
  });

  it("maps occupant joins, nick changes and leaves to ghost joins and leaves", async () => {
    bob = await RemoteUser.connect(prosody.service, "bob", ACCOUNTS.bob);
    await bob.join("lobby", "bob");
    await ctx.waitFor((c) => c.method === "join" && c.room === "lobby" && c.from === "bob");
    await bob.changeNick("lobby", "robert");
    const left = await ctx.waitFor((c) => c.method === "leave" && c.from === "bob");
    const joined = await ctx.waitFor((c) => c.method === "join" && c.from === "robert");
    assert.equal(left.args[0], "changed nick to robert");
    assert.ok(
      ctx.calls.indexOf(left) < ctx.calls.indexOf(joined),
      "the old nick leaves before the new one joins",
    );
    await bob.leave("lobby", "robert");
    await ctx.waitFor((c) => c.method === "leave" && c.room === "lobby" && c.from === "robert");
    assert.equal(ctx.calls.filter((c) => c.method === "join" && c.from === "robert").length, 1);
  });

  it("maps subject changes both ways", async () => {
    await alice.setSubject("lobby", "Welcome to the lobby");
    const info = await ctx.waitFor((c) => c.method === "setRoomInfo" && c.room === "lobby");
    assert.equal(info.from, "alice");
    assert.deepEqual(info.args[0], { topic: "Welcome to the lobby" });

    const change: MatrixRoomChange = {
      eventId: "$topic",
      sender,
      kind: "topic",
      value: "Topic from Matrix",
      raw: { ...raw, type: "m.room.topic", state_key: "" },
    };
    await adapter.onRoomChange(change, ctx.portal("lobby"));
    const subject = await alice.waitFor(
      (el) => el.is("message") && el.getChildText("subject") === "Topic from Matrix",
      "subject from the bridge",
    );
    assert.equal(subject.attrs.from, `lobby@${MUC_DOMAIN}/${BRIDGE_NICK}`);
    await alice.say("lobby", "marker after subject");
    await ctx.waitFor((c) => c.method === "send" && bodyOf(c) === "marker after subject");
    assert.equal(
      ctx.calls.filter((c) => c.method === "setRoomInfo").length,
      1,
      "the bridge's own subject change came back into Matrix",
    );
  });

  it("queryRoom joins an existing room, lists its occupants and does not bridge its history", async () => {
    await alice.join("tea", "alice", { name: "Tea Room" });
    await alice.say("tea", "old message one");
    await alice.say("tea", "old message two");
    await alice.waitForMessage("tea", (b) => b === "old message two");

    const spec = await adapter.queryRoom("tea");
    assert.ok(spec, "queryRoom found the room");
    assert.equal(spec.name, "Tea Room");
    assert.deepEqual(spec.members, ["alice"]);
    await alice.waitForOccupant("tea", BRIDGE_NICK);
    await ctx.portals.ensure("tea", spec);

    await alice.say("tea", "fresh message");
    await ctx.waitFor((c) => c.method === "send" && c.room === "tea" && bodyOf(c) === "fresh message");
    assert.deepEqual(
      sends(ctx, "tea").map(bodyOf),
      ["fresh message"],
      "history replayed on join was bridged",
    );
    assert.deepEqual(await ctx.kv.get("joined-rooms"), ["tea"]);

    assert.equal(await adapter.queryRoom("no-such-room"), null);
    assert.equal(await adapter.queryRoom("Not Canonical"), null);
    assert.deepEqual(await adapter.queryUser("alice"), { displayName: "alice" });
    assert.equal(await adapter.queryUser("nobody-here"), null);
  });

  it("a Matrix message into a portal whose room it is not in joins it, without replaying history", async () => {
    await alice.join("cafe", "alice");
    await alice.say("cafe", "cafe history one");
    await alice.say("cafe", "cafe history two");
    await alice.waitForMessage("cafe", (b) => b === "cafe history two");
    const portal = (await ctx.portals.ensure("cafe")) satisfies Portal;

    // Act as a server that ignores maxstanzas="0": strip the history request from the bridge's
    // join, so the room replays its history and the bridge must drop it by itself.
    const conn = (adapter as unknown as { conn: { send(el: Element): Promise<void> } }).conn;
    const send = conn.send.bind(conn);
    let stripped = 0;
    conn.send = (el: Element) => {
      const x = el.is("presence") ? el.getChild("x", "http://jabber.org/protocol/muc") : undefined;
      if (x) {
        x.children = [];
        stripped += 1;
      }
      return send(el);
    };
    try {
      await adapter.onMessage(matrixMessage("hello cafe"), portal);
    } finally {
      conn.send = send;
    }
    assert.equal(stripped, 1, "the bridge joined the room once");
    await alice.waitForMessage("cafe", (b) => b === "<Matrix Alice> hello cafe");
    // The occupants found on joining a portal's room get their ghosts joined.
    await ctx.waitFor((c) => c.method === "join" && c.room === "cafe" && c.from === "alice");

    await alice.say("cafe", "fresh cafe");
    await ctx.waitFor((c) => c.method === "send" && c.room === "cafe" && bodyOf(c) === "fresh cafe");
    assert.deepEqual(sends(ctx, "cafe").map(bodyOf), ["fresh cafe"], "history replayed on join was bridged");
  });

  it("start fails clearly on a wrong password, an unreachable server and a refused plain connection", async () => {
    const wrong = await makeAdapter(prosody.service, { password: "definitely-wrong-password", rooms: [] });
    await assert.rejects(wrong.start(new RecordingContext()), (err: Error) => {
      assert.match(err.message, /login as bridge@localhost .*failed: not-authorized/);
      assert.ok(!err.message.includes("definitely-wrong-password"), "the password leaked into the error");
      return true;
    });
    await wrong.stop();

    const port = await freePort();
    const unreachable = await makeAdapter(`xmpp://127.0.0.1:${port}`, { rooms: [] });
    await assert.rejects(
      unreachable.start(new RecordingContext()),
      /cannot reach the XMPP server at xmpp:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/,
    );
    await unreachable.stop();

    const strict = await makeAdapter(prosody.service, { allowInsecure: false, rooms: [] });
    await assert.rejects(
      strict.start(new RecordingContext()),
      /refusing to log in .* unencrypted connection/,
    );
    await strict.stop();
  });

  it("reconnects after prosody restarts and rejoins its rooms", async () => {
    await alice.stop();
    await bob?.stop();
    bob = null;
    await prosody.restart();
    alice = await RemoteUser.connect(prosody.service, "alice", ACCOUNTS.alice);
    await alice.join("lobby", "alice");
    await alice.waitForOccupant("lobby", BRIDGE_NICK, 20_000);
    await alice.say("lobby", "hello after the restart");
    const call = await ctx.waitFor(
      (c) => c.method === "send" && c.room === "lobby" && bodyOf(c) === "hello after the restart",
      20_000,
    );
    assert.equal(call.from, "alice");
    // The room's history (kept across the restart) was not replayed into Matrix on the rejoin.
    assert.equal(sends(ctx, "lobby").filter((c) => bodyOf(c) === "hello from xmpp").length, 1);
    // Matrix -> XMPP works again too.
    await adapter.onMessage(matrixMessage("back online"), ctx.portal("lobby"));
    await alice.waitForMessage("lobby", (b) => b === "<Matrix Alice> back online");
  });

  it("stop leaves the rooms and closes; a second stop does not throw", async () => {
    await adapter.stop();
    await alice.waitFor(
      (el) =>
        el.is("presence") &&
        el.attrs.from === `lobby@${MUC_DOMAIN}/${BRIDGE_NICK}` &&
        el.attrs.type === "unavailable",
      "the bridge leaving the lobby",
    );
    await adapter.stop();
    await assert.rejects(
      adapter.onMessage(matrixMessage("after stop"), ctx.portal("lobby")),
      /not connected|not started/,
    );
  });
});
