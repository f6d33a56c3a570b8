import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { classifyEvent, relation } from "../../../src/bridge/matrix-to-adapter.js";
import { messageContent } from "../../../src/bridge/adapter-to-matrix.js";
import type { MatrixMessage } from "../../../src/adapter/adapter.js";
import type { MatrixEvent } from "../../../src/matrix/events.js";
import { addPills, plainTextOf } from "../../../src/formatting/index.js";

const sender = { userId: "@alice:e.org", displayName: "Alice" };
const known: Record<string, string> = { $root: "remote-root", $mid: "remote-mid" };
const remoteIdOf = (id: string) => known[id];
const ghostRemoteId = (userId: string) => /^@irc_(.+):e\.org$/.exec(userId)?.[1] ?? null;

function message(content: Record<string, unknown>): MatrixMessage {
  const event: MatrixEvent = {
    event_id: "$e",
    type: "m.room.message",
    room_id: "!r:e.org",
    sender: "@alice:e.org",
    origin_server_ts: 1,
    content: { msgtype: "m.text", ...content },
  };
  const c = classifyEvent(event, sender, remoteIdOf, relation(event), ghostRemoteId);
  assert.equal(c.kind, "message");
  return (c as { message: MatrixMessage }).message;
}

const pill = (userId: string, name: string) => `<a href="https://matrix.to/#/${userId}">${name}</a>`;

describe("threads, Matrix -> remote", () => {
  it("gives the thread root with its remote id; a fallback reply is no reply", () => {
    const m = message({
      body: "in thread",
      "m.relates_to": {
        rel_type: "m.thread",
        event_id: "$root",
        is_falling_back: true,
        "m.in_reply_to": { event_id: "$mid" },
      },
    });
    assert.deepEqual(m.thread, { rootEventId: "$root", rootRemoteId: "remote-root" });
    assert.equal(m.replyTo, undefined);
  });

  it("keeps a real reply inside a thread, and a root the bridge never saw without remote id", () => {
    const m = message({
      body: "answer",
      "m.relates_to": { rel_type: "m.thread", event_id: "$unknown", "m.in_reply_to": { event_id: "$mid" } },
    });
    assert.deepEqual(m.thread, { rootEventId: "$unknown" });
    assert.deepEqual(m.replyTo, { eventId: "$mid", remoteId: "remote-mid" });
    assert.equal(message({ body: "plain" }).thread, undefined);
  });
});

describe("threads, remote -> Matrix", () => {
  it("makes an m.thread relation falling back to the root, or replying in the thread", () => {
    assert.deepEqual(messageContent("t", { threadRootEventId: "$root" })["m.relates_to"], {
      rel_type: "m.thread",
      event_id: "$root",
      is_falling_back: true,
      "m.in_reply_to": { event_id: "$root" },
    });
    assert.deepEqual(
      messageContent("t", { threadRootEventId: "$root", replyToEventId: "$mid" })["m.relates_to"],
      {
        rel_type: "m.thread",
        event_id: "$root",
        is_falling_back: false,
        "m.in_reply_to": { event_id: "$mid" },
      },
    );
  });
});

describe("mentions, Matrix -> remote", () => {
  it("reads m.mentions, with the remote ids of ghosts", () => {
    const m = message({
      body: "hi bob and carol",
      "m.mentions": { user_ids: ["@irc_bob:e.org", "@carol:e.org", 7], room: true },
    });
    assert.deepEqual(m.mentions, {
      userIds: ["@irc_bob:e.org", "@carol:e.org"],
      remoteUsers: ["bob"],
      room: true,
      ghosts: { "@irc_bob:e.org": "bob" },
    });
  });

  it("falls back to the HTML's pills (and @room in the body) without m.mentions", () => {
    const m = message({
      body: "Bob: hi @room",
      format: "org.matrix.custom.html",
      formatted_body: `${pill("@irc_bob:e.org", "Bob")}: hi @room ${pill("@irc_bob:e.org", "Bob")}`,
    });
    assert.deepEqual(m.mentions, {
      userIds: ["@irc_bob:e.org"],
      remoteUsers: ["bob"],
      room: true,
      ghosts: { "@irc_bob:e.org": "bob" },
    });
  });

  it("has no mentions for an empty m.mentions, even with pills", () => {
    const m = message({
      body: "x",
      "m.mentions": {},
      format: "org.matrix.custom.html",
      formatted_body: pill("@irc_bob:e.org", "Bob"),
    });
    assert.equal(m.mentions, undefined);
    assert.equal(message({ body: "nobody" }).mentions, undefined);
  });

  it("plainTextOf writes pills through the adapter's formatMention", () => {
    const m = message({
      body: "Bob: see Carol",
      format: "org.matrix.custom.html",
      formatted_body: `${pill("@irc_bob:e.org", "Bob")}: see <b>${pill("@carol:e.org", "Carol")}</b>`,
      "m.mentions": { user_ids: ["@irc_bob:e.org", "@carol:e.org"] },
    });
    const seen: unknown[] = [];
    const text = plainTextOf(m, {
      formatMention: (user) => {
        seen.push(user);
        return user.remoteId !== undefined ? `${user.remoteId}:` : `@${user.displayName}`;
      },
    });
    assert.equal(text, "bob:: see @Carol");
    assert.deepEqual(seen, [
      { userId: "@irc_bob:e.org", remoteId: "bob", displayName: "Bob" },
      { userId: "@carol:e.org", displayName: "Carol" },
    ]);
    assert.equal(plainTextOf(m), "Bob: see Carol");
    assert.equal(plainTextOf({ body: "just text" }), "just text");
  });
});

describe("mentions, remote -> Matrix", () => {
  const bob = { userId: "@irc_bob:e.org", names: ["Bob Smith", "bob"] };

  it("puts ghosts in m.mentions and pills where the body names them", () => {
    const c = messageContent(
      { body: "Bob Smith: hi <3 (not bobby)", mentions: ["bob"] },
      { mentions: [bob] },
    );
    assert.deepEqual(c["m.mentions"], { user_ids: ["@irc_bob:e.org"] });
    assert.equal(c.format, "org.matrix.custom.html");
    assert.equal(c.formatted_body, `${pill("@irc_bob:e.org", "Bob Smith")}: hi &lt;3 (not bobby)`);
    assert.equal(c.body, "Bob Smith: hi <3 (not bobby)");
  });

  it("pills names in the adapter's html, but not inside links or code", () => {
    const c = messageContent(
      { body: "b", html: '<b>bob</b> <code>bob</code> <a href="https://e.org">bob</a>', mentions: ["bob"] },
      { mentions: [bob] },
    );
    assert.equal(
      c.formatted_body,
      `<b>${pill("@irc_bob:e.org", "bob")}</b> <code>bob</code> <a href="https://e.org">bob</a>`,
    );
  });

  it("sends m.mentions without HTML when no name appears", () => {
    const c = messageContent({ body: "hello", mentions: ["bob"] }, { mentions: [bob] });
    assert.deepEqual(c["m.mentions"], { user_ids: ["@irc_bob:e.org"] });
    assert.equal(c.formatted_body, undefined);
    assert.deepEqual(addPills("x", []), { html: "x", changed: false });
  });
});
