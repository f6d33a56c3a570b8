import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { withHarness, TestAdapter, DOMAIN } from "../../support/bridge-harness.js";
import type { MatrixMessage, MatrixRedaction } from "../../../src/adapter/index.js";

const messages = (
  hs: {
    rooms: Map<
      string,
      {
        timeline: Array<{
          type: string;
          sender: string;
          content: Record<string, unknown>;
          origin_server_ts: number;
          event_id: string;
        }>;
      }
    >;
  },
  roomId: string,
) => hs.rooms.get(roomId)!.timeline.filter((e) => e.type === "m.room.message");

describe("bridge: Matrix -> remote", () => {
  it("creates a portal through the alias query and routes messages to onMessage", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("lobby");
      assert.equal(portal.alias, `#test_lobby:${DOMAIN}`);
      assert.equal(h.hs.aliases.get(`#test_lobby:${DOMAIN}`), portal.roomId);
      assert.equal(
        await h.push([{ room_id: portal.roomId, content: { msgtype: "m.text", body: "hi" } }]),
        200,
      );
      const call = h.adapter.calls.find((c) => c.method === "onMessage");
      assert.ok(call, "onMessage was called");
      const [message, p] = call.args as [MatrixMessage, typeof portal];
      assert.equal(message.body, "hi");
      assert.equal(p.remoteId, "lobby");
    });
  });

  it("answers 404 to an alias the adapter does not know, and makes no room", async () => {
    await withHarness(async (h) => {
      const res = await h.get(`/_matrix/app/v1/rooms/${encodeURIComponent(`#test_missing1:${DOMAIN}`)}`);
      assert.equal(res.status, 404);
      assert.equal(h.hs.requestsTo("POST", /createRoom/).length, 0);
    });
  });

  it("maps the remote id onMessage returned, so a redaction names it", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("ids");
      await h.push([{ event_id: "$m1", room_id: portal.roomId, content: { msgtype: "m.text", body: "x" } }]);
      await h.push([
        { event_id: "$red", type: "m.room.redaction", room_id: portal.roomId, redacts: "$m1", content: {} },
      ]);
      const call = h.adapter.calls.find((c) => c.method === "onRedaction");
      assert.ok(call);
      assert.deepEqual((call.args[0] as MatrixRedaction).target, { eventId: "$m1", remoteId: "r1" });
    });
  });

  it("drops echoes of its own bot and ghosts, and ghost memberships", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("echo");
      await h.push([
        {
          room_id: portal.roomId,
          sender: `@test_bob:${DOMAIN}`,
          content: { msgtype: "m.text", body: "ghost" },
        },
        { room_id: portal.roomId, sender: `@bot:${DOMAIN}`, content: { msgtype: "m.text", body: "bot" } },
        {
          room_id: portal.roomId,
          type: "m.room.member",
          state_key: `@test_bob:${DOMAIN}`,
          content: { membership: "leave" },
        },
        {
          room_id: portal.roomId,
          type: "m.room.member",
          state_key: "@alice:example.org",
          content: { membership: "join" },
        },
      ]);
      assert.deepEqual(
        h.adapter.calls.filter((c) => c.method !== "queryRoom").map((c) => c.method),
        ["onMembership"],
        "only the Matrix user's own join reaches the adapter",
      );
    });
  });

  it("uses the member event's display name for the sender", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("names");
      await h.push([
        {
          room_id: portal.roomId,
          type: "m.room.member",
          state_key: "@carol:example.org",
          sender: "@carol:example.org",
          content: { membership: "join", displayname: "Carol C" },
        },
        {
          room_id: portal.roomId,
          sender: "@carol:example.org",
          content: { msgtype: "m.text", body: "hello" },
        },
      ]);
      const call = h.adapter.calls.find((c) => c.method === "onMessage");
      assert.equal((call?.args[0] as MatrixMessage).sender.displayName, "Carol C");
    });
  });

  it("tells the room once when the adapter cannot carry a kind of event", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("noreact");
      const reaction = (n: number) => ({
        event_id: `$react${n}`,
        type: "m.reaction",
        room_id: portal.roomId,
        content: { "m.relates_to": { rel_type: "m.annotation", event_id: "$x", key: "👍" } },
      });
      assert.equal(await h.push([reaction(1), reaction(2)]), 200);
      const notices = messages(h.hs, portal.roomId).filter((e) => e.content.msgtype === "m.notice");
      assert.equal(notices.length, 1);
      assert.match(String(notices[0]!.content.body), /cannot carry reactions/);
      assert.equal(notices[0]!.sender, `@bot:${DOMAIN}`);
    });
  });

  it("answers 5xx when the adapter throws, and delivers the event again on the retry", async () => {
    const adapter = new TestAdapter();
    let failures = 1;
    const original = adapter.onMessage.bind(adapter);
    adapter.onMessage = (m, p) =>
      failures-- > 0 ? Promise.reject(new Error("remote down")) : original(m, p);
    await withHarness(
      async (h) => {
        const portal = await h.portal("retry");
        const event = {
          event_id: "$once",
          room_id: portal.roomId,
          content: { msgtype: "m.text", body: "r" },
        };
        assert.ok((await h.push([event], "same-txn")) >= 500);
        assert.equal(await h.push([event], "same-txn"), 200);
        assert.equal(adapter.calls.filter((c) => c.method === "onMessage").length, 1);
      },
      { adapter },
    );
  });
});

describe("bridge: the homeserver's queries", () => {
  it("registers a ghost with its profile before answering a user query", async () => {
    await withHarness(async (h) => {
      const res = await h.get(`/_matrix/app/v1/users/${encodeURIComponent(`@test_bob:${DOMAIN}`)}`);
      assert.equal(res.status, 200);
      assert.ok(h.hs.registered.has(`@test_bob:${DOMAIN}`));
      assert.equal(h.hs.profiles.get(`@test_bob:${DOMAIN}`)?.displayname, "Remote bob");
      const missing = await h.get(`/_matrix/app/v1/users/${encodeURIComponent(`@test_missing2:${DOMAIN}`)}`);
      assert.equal(missing.status, 404);
      assert.ok(!h.hs.registered.has(`@test_missing2:${DOMAIN}`));
    });
  });

  it("maps third-party URIs through the adapter to ids in the namespaces", async () => {
    await withHarness(async (h) => {
      const user = await h.get(`/_matrix/app/v1/user?uri=${encodeURIComponent("test:Alice")}`);
      assert.equal(user.status, 200);
      assert.deepEqual(user.body, { user_id: `@test__alice:${DOMAIN}` });
      const alias = await h.get(`/_matrix/app/v1/alias?uri=${encodeURIComponent("test:x#chan")}`);
      assert.deepEqual(alias.body, { alias: `#test_chan:${DOMAIN}` });
      const none = await h.get(`/_matrix/app/v1/user?uri=${encodeURIComponent("other:bob")}`);
      assert.equal(none.status, 404);
    });
  });
});
