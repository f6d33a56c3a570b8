import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserNotInNamespaceError, type RequestInfo } from "../../../src/client/index.js";
import type { MatrixEvent } from "../../../src/matrix/events.js";
import { openStore } from "../../../src/store/index.js";
import { BOT, DOMAIN, fixture } from "./helpers.js";

const ALICE = `@ghost_alice:${DOMAIN}`;
const BOB = `@ghost_bob:${DOMAIN}`;

function member(roomId: string, userId: string, membership: string): MatrixEvent {
  return {
    event_id: `$m${Math.random()}`,
    type: "m.room.member",
    room_id: roomId,
    sender: BOT,
    state_key: userId,
    origin_server_ts: 1,
    content: { membership },
  };
}

describe("Intent", () => {
  it("refuses a user outside the namespace at once, with no HTTP call", async () => {
    const f = await fixture();
    try {
      for (const user of [`@alice:${DOMAIN}`, `@ghost_x:elsewhere.org`, "not-a-user"]) {
        assert.throws(
          () => f.client.intent(user),
          (err: unknown) => err instanceof UserNotInNamespaceError && err.message.includes(user),
        );
      }
      assert.equal(f.client.intent(BOT).isBot, true);
      assert.equal(f.hs.requests.length, 0);
    } finally {
      await f.close();
    }
  });

  it("sendMessage registers and joins the ghost once, then only sends; external_url and ts pass through", async () => {
    const f = await fixture();
    try {
      const roomId = f.hs.createRoomDirect(BOT);
      const alice = f.client.intent(ALICE);
      await alice.sendText(roomId, "one", {
        ts: 1_500_000_000_000,
        externalUrl: "https://remote.example/m/1",
      });
      await alice.sendText(roomId, "two");
      assert.deepEqual(
        f.hs.requests.map((r) => `${r.method} ${r.path.split("/").slice(4, 5).join("")}`),
        ["POST register", "POST join", "PUT rooms", "PUT rooms"],
      );
      const [first, second] = f.hs.rooms.get(roomId)!.timeline.filter((e) => e.type === "m.room.message");
      assert.equal(first!.sender, ALICE);
      assert.equal(first!.origin_server_ts, 1_500_000_000_000);
      assert.deepEqual(first!.content, {
        msgtype: "m.text",
        body: "one",
        external_url: "https://remote.example/m/1",
      });
      assert.equal(second!.content.external_url, undefined);
      await assert.rejects(
        alice.sendText(roomId, "x", { externalUrl: "javascript:x" }),
        /externalUrl must be an http/,
      );
    } finally {
      await f.close();
    }
  });

  it("a restarted bridge (new client, same store) re-registers and re-joins nobody", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bk-intent-"));
    const url = `sqlite://${join(dir, "bridge.db")}`;
    try {
      const store1 = await openStore(url);
      const f = await fixture({ store: store1 });
      const roomId = f.hs.createRoomDirect(BOT);
      for (const ghost of [ALICE, BOB]) {
        await f.client.intent(ghost).ensureJoined(roomId);
        await f.client.intent(ghost).setDisplayName(`name of ${ghost}`);
      }
      assert.equal(f.hs.requestsTo("POST", "/register").length, 2);
      assert.equal(f.hs.requestsTo("POST", "/join/").length, 2);
      await f.client.close();
      await store1.close();

      const store2 = await openStore(url);
      const seen: RequestInfo[] = [];
      const restarted = f.newClient({ store: store2, onRequest: (i) => seen.push(i) });
      for (const ghost of [ALICE, BOB]) {
        const intent = restarted.intent(ghost);
        await intent.ensureRegistered();
        await intent.ensureJoined(roomId);
        assert.equal(await intent.setDisplayName(`name of ${ghost}`), false, "unchanged profile not re-sent");
        await intent.sendText(roomId, "after restart");
      }
      assert.deepEqual(
        seen.map((s) => s.method),
        ["PUT", "PUT"],
        "only the two sends reached the homeserver",
      );
      await restarted.close();
      await f.hs.close();
      await store2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("concurrent ensureJoined calls for one ghost and room make one join", async () => {
    const f = await fixture();
    try {
      const roomId = f.hs.createRoomDirect(BOT);
      const alice = f.client.intent(ALICE);
      await Promise.all(Array.from({ length: 5 }, () => alice.ensureJoined(roomId)));
      assert.equal(f.hs.requestsTo("POST", "/register").length, 1);
      assert.equal(f.hs.requestsTo("POST", "/join/").length, 1);
    } finally {
      await f.close();
    }
  });

  it("observeEvent keeps membership current: a kick or ban makes the next send re-join", async () => {
    const f = await fixture();
    try {
      const roomId = f.hs.createRoomDirect(BOT);
      const alice = f.client.intent(ALICE);
      await alice.ensureJoined(roomId);
      assert.equal(
        await f.client.observeEvent(member(roomId, `@someone:${DOMAIN}`, "leave")),
        false,
        "not ours",
      );
      assert.equal(
        await f.client.observeEvent({ ...member(roomId, ALICE, "leave"), type: "m.room.message" }),
        false,
        "not a membership event",
      );
      await alice.ensureJoined(roomId);
      assert.equal(f.hs.requestsTo("POST", "/join/").length, 1);

      for (const membership of ["leave", "ban"]) {
        f.hs.rooms.get(roomId)!.members.set(ALICE, "leave");
        assert.equal(await f.client.observeEvent(member(roomId, ALICE, membership)), true);
        await alice.sendText(roomId, `after ${membership}`);
      }
      assert.equal(f.hs.requestsTo("POST", "/join/").length, 3, "re-joined after each");

      // a join pushed by the homeserver (e.g. made by another bridge instance) is remembered too
      const other = f.hs.createRoomDirect(BOT);
      f.hs.registered.add(BOB);
      f.hs.rooms.get(other)!.members.set(BOB, "join");
      await f.client.observeEvent(member(other, BOB, "join"));
      await f.client.intent(BOB).sendText(other, "hi");
      assert.equal(f.hs.requestsTo("POST", "/register").length, 1, "BOB's join implied it is registered");
      assert.equal(f.hs.requestsTo("POST", "/join/").length, 3);
    } finally {
      await f.close();
    }
  });

  it("falls back to a bot invite when the ghost may not join", async () => {
    const f = await fixture();
    try {
      const roomId = f.hs.createRoomDirect(BOT, "invite");
      const alice = f.client.intent(ALICE);
      await alice.sendText(roomId, "in");
      assert.deepEqual(
        f.hs.requests.map((r) => [r.method, r.path.split("/").at(-1), r.userId]),
        [
          ["POST", "register", BOT],
          ["POST", roomId, ALICE],
          ["POST", "invite", BOT],
          ["POST", roomId, ALICE],
          ["PUT", f.hs.requests.at(-1)!.path.split("/").at(-1), ALICE],
        ],
      );
      assert.deepEqual(f.hs.requestsTo("POST", "/invite")[0]!.json, { user_id: ALICE });
      assert.equal(f.hs.rooms.get(roomId)!.members.get(ALICE), "join");
    } finally {
      await f.close();
    }
  });

  it("registers the bot once (Synapse needs its user row) and a refused bot join is an error", async () => {
    const f = await fixture();
    try {
      const roomId = f.hs.createRoomDirect(`@ghost_owner:${DOMAIN}`, "invite");
      await assert.rejects(f.client.botIntent.ensureJoined(roomId), /403 M_FORBIDDEN/);
      await assert.rejects(f.client.botIntent.ensureJoined(roomId), /403 M_FORBIDDEN/);
      assert.equal(f.hs.requestsTo("POST", "/register").length, 1, "M_USER_IN_USE counts as registered");
      assert.equal(f.hs.requestsTo("POST", "/invite").length, 0);
      await assert.rejects(f.client.botIntent.ensureJoined("#alias:x"), /needs a room id/);
    } finally {
      await f.close();
    }
  });

  it("sets display name and avatar only when they change", async () => {
    const f = await fixture();
    try {
      const alice = f.client.intent(ALICE);
      assert.equal(await alice.setDisplayName("Alice"), true);
      assert.equal(await alice.setDisplayName("Alice"), false);
      assert.equal(await alice.setAvatarUrl("mxc://example.org/a"), true);
      assert.equal(await alice.setAvatarUrl("mxc://example.org/a"), false);
      assert.equal(await alice.setDisplayName("Alice 2"), true);
      assert.deepEqual(f.hs.profiles.get(ALICE), {
        displayname: "Alice 2",
        avatar_url: "mxc://example.org/a",
      });
      assert.equal(f.hs.requestsTo("PUT", "/displayname").length, 2);
      assert.equal(f.hs.requestsTo("PUT", "/avatar_url").length, 1);
    } finally {
      await f.close();
    }
  });

  it("keeps its cache within cacheSize; the store still knows what was evicted", async () => {
    const f = await fixture({ cacheSize: 3 });
    try {
      const rooms = Array.from({ length: 6 }, () => f.hs.createRoomDirect(BOT));
      const alice = f.client.intent(ALICE);
      for (const roomId of rooms) await alice.ensureJoined(roomId);
      assert.ok(f.client.cachedIntentEntries <= 3, `cache holds ${f.client.cachedIntentEntries}`);
      const before = f.hs.requests.length;
      for (const roomId of rooms) await alice.ensureJoined(roomId);
      assert.equal(f.hs.requests.length, before, "evicted memberships were read back from the store");
      assert.ok(f.client.cachedIntentEntries <= 3);
    } finally {
      await f.close();
    }
  });

  it("keeps one room's sends in call order across ghosts, joins included", async () => {
    const f = await fixture({ concurrency: 5 });
    try {
      const roomId = f.hs.createRoomDirect(BOT, "invite");
      const ghosts = [ALICE, BOB, `@ghost_carol:${DOMAIN}`].map((g) => f.client.intent(g));
      const sends = [];
      for (let i = 0; i < 9; i++) sends.push(ghosts[i % 3]!.sendText(roomId, `m${i}`));
      await Promise.all(sends);
      const bodies = f.hs.rooms
        .get(roomId)!
        .timeline.filter((e) => e.type === "m.room.message")
        .map((e) => e.content.body);
      assert.deepEqual(bodies, ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]);
    } finally {
      await f.close();
    }
  });
});
