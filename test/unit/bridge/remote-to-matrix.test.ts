import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  startHarness,
  withHarness,
  testRegistration,
  TestAdapter,
  DOMAIN,
} from "../../support/bridge-harness.js";
import { FakeHomeserver } from "../../support/fake-homeserver.js";
import { openStore } from "../../../src/store/index.js";

type Timeline = Array<{
  type: string;
  sender: string;
  content: Record<string, unknown>;
  origin_server_ts: number;
  event_id: string;
}>;
const timeline = (hs: FakeHomeserver, roomId: string) => hs.rooms.get(roomId)!.timeline as Timeline;
const bodies = (hs: FakeHomeserver, roomId: string) =>
  timeline(hs, roomId)
    .filter((e) => e.type === "m.room.message")
    .map((e) => e.content.body);

describe("bridge: remote -> Matrix through the outbox", () => {
  it("sends from the ghost, in order, with ts, external_url and a resolved reply", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("chan");
      const ctx = h.adapter.ctx!;
      await ctx.send("chan", "Bob", "first", {
        ts: 1_700_000_000_000,
        remoteId: "m1",
        externalUrl: "https://remote/m1",
      });
      for (let i = 2; i <= 20; i++) await ctx.send("chan", "Bob", `msg ${i}`);
      await ctx.send("chan", "Carol", "an answer", { replyTo: "m1" });
      await h.bridge.flush();
      const events = timeline(h.hs, portal.roomId).filter((e) => e.type === "m.room.message");
      assert.deepEqual(
        events.map((e) => e.content.body),
        ["first", ...Array.from({ length: 19 }, (_, i) => `msg ${i + 2}`), "an answer"],
      );
      assert.equal(events[0]!.sender, `@test__bob:${DOMAIN}`);
      assert.equal(events[0]!.origin_server_ts, 1_700_000_000_000);
      assert.equal(events[0]!.content.external_url, "https://remote/m1");
      assert.deepEqual(events.at(-1)!.content["m.relates_to"], {
        "m.in_reply_to": { event_id: events[0]!.event_id },
      });
    });
  });

  it("resolves edit, reaction and redaction targets by remote id", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("rel");
      const ctx = h.adapter.ctx!;
      await ctx.send("rel", "bob", "typo", { remoteId: "m1" });
      await ctx.edit("rel", "bob", "m1", "fixed");
      await ctx.react("rel", "bob", "m1", "👍", { remoteId: "re1" });
      await ctx.redact("rel", "bob", "re1", "oops");
      await h.bridge.flush();
      const events = timeline(h.hs, portal.roomId).filter(
        (e) => e.sender === `@test_bob:${DOMAIN}` && e.type !== "m.room.member",
      );
      const original = events.find((e) => e.content.body === "typo")!;
      const edit = events.find((e) => e.content.body === "* fixed")!;
      assert.deepEqual(edit.content["m.relates_to"], { rel_type: "m.replace", event_id: original.event_id });
      const reaction = events.find((e) => e.type === "m.reaction")!;
      assert.deepEqual(reaction.content["m.relates_to"], {
        rel_type: "m.annotation",
        event_id: original.event_id,
        key: "👍",
      });
      const redaction = h.hs.requestsTo("PUT", /\/redact\//);
      assert.equal(redaction.length, 1);
      assert.ok(
        redaction[0]!.path.includes(encodeURIComponent(reaction.event_id)) ||
          redaction[0]!.path.includes(reaction.event_id),
      );
    });
  });

  it("keeps retrying while the homeserver fails, with the same txnId, and loses nothing", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("down");
      h.hs.script(
        { method: "PUT", path: "/send/m.room.message/" },
        { status: 502, body: { errcode: "M_UNKNOWN" } },
        12,
      );
      const ctx = h.adapter.ctx!;
      for (let i = 1; i <= 5; i++) await ctx.send("down", "bob", `m${i}`);
      await h.bridge.flush();
      assert.deepEqual(bodies(h.hs, portal.roomId), ["m1", "m2", "m3", "m4", "m5"]);
      const sends = h.hs.requestsTo("PUT", /\/send\/m\.room\.message\//);
      assert.ok(sends.length >= 17, `expected the failures to be retried, saw ${sends.length} sends`);
      const firstTxn = sends[0]!.path.split("/").at(-1);
      assert.ok(
        sends.slice(0, 12).every((r) => r.path.split("/").at(-1) === firstTxn),
        "every retry of m1 reused its txnId",
      );
    });
  });

  it("delivers after a restart what was accepted while the homeserver was down", async () => {
    const registration = testRegistration();
    const hs = await FakeHomeserver.start({ asToken: registration.as_token, domain: DOMAIN });
    const file = join(await mkdtemp(join(tmpdir(), "bk-restart-")), "s.db");
    const store1 = await openStore(`sqlite://${file}`);
    const first = await startHarness({ hs, store: store1, registration });
    const portal = await first.portal("persist");
    hs.script({ method: "PUT", path: "/send/" }, { status: 503 }, 1_000_000);
    for (let i = 1; i <= 3; i++) await first.adapter.ctx!.send("persist", "bob", `kept ${i}`);
    await first.stop();
    await store1.close();
    assert.deepEqual(bodies(hs, portal.roomId), [], "nothing got through while down");

    hs.clearScripts(); // the homeserver is back
    const store2 = await openStore(`sqlite://${file}`);
    const second = await startHarness({ hs, store: store2, registration, adapter: new TestAdapter() });
    try {
      await second.bridge.flush();
      assert.deepEqual(bodies(hs, portal.roomId), ["kept 1", "kept 2", "kept 3"]);
    } finally {
      await second.stop();
      await store2.close();
      await hs.close();
    }
  });

  it("moves a permanently refused action aside and carries on with the room", async () => {
    await withHarness(async (h) => {
      const portal = await h.portal("perm");
      h.hs.script(
        { method: "PUT", path: "/send/m.room.message/" },
        { status: 400, body: { errcode: "M_BAD_JSON" } },
        1,
      );
      await h.adapter.ctx!.send("perm", "bob", "refused");
      await h.adapter.ctx!.send("perm", "bob", "after");
      await h.adapter.ctx!.edit("perm", "bob", "never-seen", "x");
      await h.adapter.ctx!.send("perm", "bob", "last");
      await h.bridge.flush();
      assert.deepEqual(bodies(h.hs, portal.roomId), ["after", "last"]);
    });
  });

  it("refuses sends into a room with no portal, unless the adapter creates portals on demand", async () => {
    await withHarness(async (h) => {
      await assert.rejects(h.adapter.ctx!.send("nowhere", "bob", "x"), /has no portal/);
      h.adapter.createPortalsOnDemand = true;
      await h.adapter.ctx!.send("made", "bob", "hello");
      await h.bridge.flush();
      const portal = await h.bridge.portals.get("made");
      assert.ok(portal);
      assert.deepEqual(bodies(h.hs, portal.roomId), ["hello"]);
    });
  });

  it("rejects bad input at the call, not later in delivery", async () => {
    await withHarness(async (h) => {
      await h.portal("bad");
      const ctx = h.adapter.ctx!;
      await assert.rejects(ctx.send("bad", "", "x"), /remote user id must be a non-empty string/);
      await assert.rejects(ctx.send("bad", "bob", "x", { ts: 1.5 }), /ts must be a non-negative integer/);
      await assert.rejects(ctx.send("bad", "bob", { body: 3 } as never), /needs a string body/);
      await assert.rejects(ctx.send("bad", "é".repeat(200), "x"), /longer than the 255 bytes/);
    });
  });

  it("applies ghost profiles once, and re-sends nothing unchanged", async () => {
    await withHarness(async (h) => {
      await h.adapter.ctx!.setProfile("dave", { displayName: "Dave" });
      await h.adapter.ctx!.setProfile("dave", { displayName: "Dave" });
      await h.bridge.flush();
      assert.equal(h.hs.profiles.get(`@test_dave:${DOMAIN}`)?.displayname, "Dave");
      assert.equal(h.hs.requestsTo("PUT", /\/profile\/.*\/displayname/).length, 1);
    });
  });
});
