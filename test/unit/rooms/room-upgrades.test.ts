import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { withHarness, DOMAIN, type Harness } from "../../support/bridge-harness.js";

const BOT = `@bot:${DOMAIN}`;
const ALICE = `@alice:${DOMAIN}`;

/** A room Alice made as the upgrade of `predecessor` (what Synapse's /upgrade makes). */
function replacement(h: Harness, predecessor: string): string {
  const roomId = h.hs.createRoomDirect(ALICE);
  h.hs.rooms.get(roomId)!.state.set("m.room.create\0", {
    event_id: `$create-${roomId}`,
    room_id: roomId,
    type: "m.room.create",
    sender: ALICE,
    state_key: "",
    content: { creator: ALICE, predecessor: { room_id: predecessor, event_id: "$x" } },
    origin_server_ts: 1,
  });
  return roomId;
}

const tombstone = (roomId: string, replacementRoom?: string) => ({
  type: "m.room.tombstone",
  room_id: roomId,
  sender: ALICE,
  state_key: "",
  content:
    replacementRoom === undefined
      ? { body: "gone" }
      : { body: "upgraded", replacement_room: replacementRoom },
});

describe("room upgrades: a portal follows its room's tombstone", () => {
  it("moves the portal; the bot joins the new room, sets the bridge info, leaves a notice and the old room", async () => {
    await withHarness(async (h) => {
      const old = await h.portal("up");
      const next = replacement(h, old.roomId);
      assert.equal(await h.push([tombstone(old.roomId, next)]), 200);
      // The bot leaving the old room is the upgrade's last step.
      await poll(() => Promise.resolve(h.hs.rooms.get(old.roomId)!.members.get(BOT) === "leave"));
      assert.equal((await h.bridge.portals.get("up"))?.roomId, next);
      assert.equal(h.hs.rooms.get(next)!.members.get(BOT), "join");
      assert.equal(await h.bridge.portals.byRoomId(old.roomId), null);
      assert.equal((await h.bridge.portals.byRoomId(next))?.remoteId, "up");
      const info = h.hs.rooms.get(next)!.state.get("m.bridge\0test://test/up")?.content;
      assert.equal((info?.channel as { id?: string }).id, "up");
      const notice = h.hs.rooms
        .get(old.roomId)!
        .timeline.find((e) => e.type === "m.room.message" && e.sender === BOT);
      assert.match(
        String(notice?.content.body),
        new RegExp(`bridge goes on in .*${encodeURIComponent(next)}`),
      );
      const join = h.hs.requestsTo("POST", /\/join\//).find((r) => r.userId === BOT && r.path.endsWith(next));
      assert.equal(join?.query.get("server_name") ?? join?.query.get("via"), DOMAIN);

      // Remote -> Matrix goes to the new room, a ghost joining it as it speaks; Matrix -> remote from it.
      await h.adapter.ctx!.send("up", "bob", "after the upgrade");
      await h.bridge.flush();
      const sent = h.hs.rooms.get(next)!.timeline.find((e) => e.content.body === "after the upgrade");
      assert.equal(sent?.sender, `@test_bob:${DOMAIN}`);
      await h.push([{ room_id: next, content: { msgtype: "m.text", body: "hi from the new room" } }]);
      await poll(() =>
        Promise.resolve(
          h.adapter.calls.some(
            (c) =>
              c.method === "onMessage" && (c.args[0] as { body: string }).body === "hi from the new room",
          ),
        ),
      );
    });
  });

  it("a send queued for the old room (failing there meanwhile) is delivered to the new room", async () => {
    await withHarness(async (h) => {
      const old = await h.portal("queued");
      // Every send into the old room fails, slowly: the send is still queued when the portal moves.
      h.hs.script(
        { method: "PUT", path: `/rooms/${old.roomId}/send/` },
        { status: 500, body: { errcode: "M_UNKNOWN" }, delayMs: 500 },
        100,
      );
      await h.adapter.ctx!.send("queued", "bob", "queued before the upgrade");
      const next = replacement(h, old.roomId);
      await h.push([tombstone(old.roomId, next)]);
      await h.bridge.flush();
      assert.equal((await h.bridge.portals.get("queued"))?.roomId, next);
      const inNew = h.hs.rooms
        .get(next)!
        .timeline.filter((e) => e.content.body === "queued before the upgrade");
      assert.equal(inNew.length, 1);
      assert.equal(
        h.hs.rooms.get(old.roomId)!.timeline.filter((e) => e.content.body === "queued before the upgrade")
          .length,
        0,
      );
    });
  });

  it("ignores a tombstone without a replacement, and refuses a room that does not replace the portal", async () => {
    await withHarness(async (h) => {
      const old = await h.portal("stay");
      await h.push([tombstone(old.roomId)]);
      const stranger = h.hs.createRoomDirect(ALICE);
      await h.push([tombstone(old.roomId, stranger)]);
      await poll(() => Promise.resolve(h.hs.rooms.get(stranger)!.members.get(BOT) === "leave"));
      assert.equal((await h.bridge.portals.get("stay"))?.roomId, old.roomId);
      assert.equal(h.hs.rooms.get(old.roomId)!.members.get(BOT), "join");
    });
  });
});

async function poll(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("condition not met");
}
