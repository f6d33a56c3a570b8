import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { withHarness, DOMAIN, type Harness } from "../../support/bridge-harness.js";
import type { MatrixMessage } from "../../../src/adapter/adapter.js";
import { plainTextOf } from "../../../src/formatting/index.js";

type Event = { type: string; sender: string; content: Record<string, unknown>; event_id: string };
const messages = (h: Harness, roomId: string) =>
  (h.hs.rooms.get(roomId)!.timeline as Event[]).filter((e) => e.type === "m.room.message");
const received = (h: Harness) =>
  h.adapter.calls.filter((c) => c.method === "onMessage").map((c) => c.args[0] as MatrixMessage);
const bob = `@test_bob:${DOMAIN}`;

describe("bridge: threads and mentions end to end", () => {
  it("carries a thread both ways: remote replies in a thread, Matrix replies get the root's remote id", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("chan");
      const ctx = h.adapter.ctx!;
      await ctx.send("chan", "bob", "the root", { remoteId: "root1" });
      await ctx.send("chan", "carol", "in the thread", { thread: "root1", remoteId: "t1" });
      await ctx.send("chan", "carol", "answering t1", { thread: "root1", replyTo: "t1" });
      await ctx.send("chan", "carol", "lost thread", { thread: "never-seen" });
      await h.bridge.flush();
      const [root, inThread, answer, lost] = messages(h, portal.roomId);
      assert.equal(root!.content.body, "the root");
      assert.deepEqual(inThread!.content["m.relates_to"], {
        rel_type: "m.thread",
        event_id: root!.event_id,
        is_falling_back: true,
        "m.in_reply_to": { event_id: root!.event_id },
      });
      assert.deepEqual(answer!.content["m.relates_to"], {
        rel_type: "m.thread",
        event_id: root!.event_id,
        is_falling_back: false,
        "m.in_reply_to": { event_id: inThread!.event_id },
      });
      assert.equal(lost!.content.body, "lost thread");
      assert.equal(lost!.content["m.relates_to"], undefined);

      await h.push([
        {
          room_id: portal.roomId,
          content: {
            msgtype: "m.text",
            body: "from Matrix, in the thread",
            "m.relates_to": {
              rel_type: "m.thread",
              event_id: root!.event_id,
              is_falling_back: true,
              "m.in_reply_to": { event_id: inThread!.event_id },
            },
          },
        },
      ]);
      await h.bridge.appservice.drain();
      const [got] = received(h);
      assert.deepEqual(got!.thread, { rootEventId: root!.event_id, rootRemoteId: "root1" });
      assert.equal(got!.replyTo, undefined);
    });
  });

  it("carries mentions both ways: a remote mention becomes m.mentions and a pill; a pill reaches the adapter as its remote mention", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("chan");
      const ctx = h.adapter.ctx!;
      await ctx.setProfile("bob", { displayName: "Bob Smith" });
      await h.bridge.flush(); // the name pilled is the one set when the message is delivered
      await ctx.send("chan", "carol", { body: "Bob Smith: lunch? cc bob", mentions: ["bob"] });
      await h.bridge.flush();
      const [sent] = messages(h, portal.roomId);
      assert.deepEqual(sent!.content["m.mentions"], { user_ids: [bob] });
      const pill = (text: string) => `<a href="https://matrix.to/#/${bob}">${text}</a>`;
      assert.equal(sent!.content.formatted_body, `${pill("Bob Smith")}: lunch? cc ${pill("bob")}`);

      await h.push([
        {
          room_id: portal.roomId,
          content: {
            msgtype: "m.text",
            body: "Bob Smith: yes",
            format: "org.matrix.custom.html",
            formatted_body: `${pill("Bob Smith")}: <em>yes</em>`,
            "m.mentions": { user_ids: [bob] },
          },
        },
      ]);
      await h.bridge.appservice.drain();
      const [got] = received(h);
      assert.deepEqual(got!.mentions, {
        userIds: [bob],
        remoteUsers: ["bob"],
        room: false,
        ghosts: { [bob]: "bob" },
      });
      assert.equal(
        plainTextOf(got!, { formatMention: (u) => (u.remoteId ? `${u.remoteId}:` : u.displayName) }),
        "bob:: yes",
      );
    });
  });
});
