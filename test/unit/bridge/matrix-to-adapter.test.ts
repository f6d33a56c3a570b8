import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { classifyEvent, stripReplyFallback } from "../../../src/bridge/matrix-to-adapter.js";
import type { MatrixEvent } from "../../../src/matrix/events.js";

const sender = { userId: "@alice:e.org", displayName: "Alice" };
const known: Record<string, string> = { $orig: "remote-1" };
const remoteIdOf = (id: string) => known[id];

function ev(type: string, content: Record<string, unknown>, extra: Partial<MatrixEvent> = {}): MatrixEvent {
  return {
    event_id: "$e",
    type,
    room_id: "!r:e.org",
    sender: "@alice:e.org",
    origin_server_ts: 1000,
    content,
    ...extra,
  };
}

describe("classifying Matrix events for the adapter", () => {
  it("makes a plain message, with html only when the format says so", () => {
    const c = classifyEvent(
      ev("m.room.message", { msgtype: "m.text", body: "hi", formatted_body: "<b>hi</b>" }),
      sender,
      remoteIdOf,
    );
    assert.equal(c.kind, "message");
    assert.ok(c.kind === "message");
    assert.equal(c.message.body, "hi");
    assert.equal(c.message.html, undefined, "formatted_body without format is not html");
    assert.equal(c.message.ts, 1000);
    const h = classifyEvent(
      ev("m.room.message", {
        msgtype: "m.emote",
        body: "waves",
        format: "org.matrix.custom.html",
        formatted_body: "<i>waves</i>",
      }),
      sender,
      remoteIdOf,
    );
    assert.ok(h.kind === "message");
    assert.equal(h.message.msgtype, "m.emote");
    assert.equal(h.message.html, "<i>waves</i>");
  });

  it("resolves a reply target to its remote id and strips the fallback", () => {
    const c = classifyEvent(
      ev("m.room.message", {
        msgtype: "m.text",
        body: "> <@bob:e.org> original\n> second line\n\nmy answer",
        format: "org.matrix.custom.html",
        formatted_body: "<mx-reply><blockquote>original</blockquote></mx-reply>my <b>answer</b>",
        "m.relates_to": { "m.in_reply_to": { event_id: "$orig" } },
      }),
      sender,
      remoteIdOf,
    );
    assert.ok(c.kind === "message");
    assert.deepEqual(c.message.replyTo, { eventId: "$orig", remoteId: "remote-1" });
    assert.equal(c.message.body, "my answer");
    assert.equal(c.message.html, "my <b>answer</b>");
  });

  it("turns m.replace into an edit carrying m.new_content", () => {
    const c = classifyEvent(
      ev("m.room.message", {
        msgtype: "m.text",
        body: "* fixed",
        "m.new_content": { msgtype: "m.text", body: "fixed" },
        "m.relates_to": { rel_type: "m.replace", event_id: "$unknown" },
      }),
      sender,
      remoteIdOf,
    );
    assert.ok(c.kind === "edit");
    assert.equal(c.edit.body, "fixed");
    assert.deepEqual(c.edit.target, { eventId: "$unknown" });
  });

  it("reads redacts from the top level (room v1-10) and from content (v11)", () => {
    const old = classifyEvent(
      ev("m.room.redaction", { reason: "spam" }, { redacts: "$orig" }),
      sender,
      remoteIdOf,
    );
    assert.ok(old.kind === "redaction");
    assert.deepEqual(old.redaction.target, { eventId: "$orig", remoteId: "remote-1" });
    assert.equal(old.redaction.reason, "spam");
    const v11 = classifyEvent(ev("m.room.redaction", { redacts: "$x" }), sender, remoteIdOf);
    assert.ok(v11.kind === "redaction");
    assert.equal(v11.redaction.target.eventId, "$x");
    assert.equal(classifyEvent(ev("m.room.redaction", {}), sender, remoteIdOf).kind, "ignored");
  });

  it("needs an m.annotation with a key for a reaction", () => {
    const r = classifyEvent(
      ev("m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: "$orig", key: "👍" } }),
      sender,
      remoteIdOf,
    );
    assert.ok(r.kind === "reaction");
    assert.equal(r.reaction.key, "👍");
    assert.equal(r.reaction.target.remoteId, "remote-1");
    assert.equal(
      classifyEvent(ev("m.reaction", { "m.relates_to": { rel_type: "m.annotation" } }), sender, remoteIdOf)
        .kind,
      "ignored",
    );
  });

  it("describes memberships with the previous state", () => {
    const m = classifyEvent(
      ev(
        "m.room.member",
        { membership: "leave", reason: "bye" },
        { state_key: "@bob:e.org", unsigned: { prev_content: { membership: "join" } } },
      ),
      sender,
      remoteIdOf,
    );
    assert.ok(m.kind === "membership");
    assert.equal(m.membership.userId, "@bob:e.org");
    assert.equal(m.membership.membership, "leave");
    assert.equal(m.membership.previous, "join");
    assert.equal(m.membership.reason, "bye");
    assert.equal(
      classifyEvent(
        ev("m.room.member", { membership: "weird" }, { state_key: "@b:e.org" }),
        sender,
        remoteIdOf,
      ).kind,
      "ignored",
    );
  });

  it("maps name, topic and avatar state to room changes, removal as empty", () => {
    const t = classifyEvent(ev("m.room.topic", { topic: "new" }, { state_key: "" }), sender, remoteIdOf);
    assert.ok(t.kind === "roomChange");
    assert.deepEqual([t.change.kind, t.change.value], ["topic", "new"]);
    const a = classifyEvent(ev("m.room.avatar", {}, { state_key: "" }), sender, remoteIdOf);
    assert.ok(a.kind === "roomChange");
    assert.deepEqual([a.change.kind, a.change.value], ["avatar", ""]);
    assert.equal(
      classifyEvent(ev("m.room.name", { name: "x" }, { state_key: "odd" }), sender, remoteIdOf).kind,
      "ignored",
    );
  });

  it("ignores what no capability covers, saying why", () => {
    const c = classifyEvent(ev("m.room.power_levels", {}, { state_key: "" }), sender, remoteIdOf);
    assert.ok(c.kind === "ignored");
    assert.match(c.why, /m\.room\.power_levels/);
  });

  it("leaves a body that only looks like a quote alone when it is not a reply", () => {
    const c = classifyEvent(
      ev("m.room.message", { msgtype: "m.text", body: "> quoted\n\nmine" }),
      sender,
      remoteIdOf,
    );
    assert.ok(c.kind === "message");
    assert.equal(c.message.body, "> quoted\n\nmine");
    assert.deepEqual(stripReplyFallback("plain"), { body: "plain" });
  });
});
