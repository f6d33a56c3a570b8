// The repositories' tests, as functions over a backend, so the unit suite runs them on
// memory and sqlite and the store suite runs the contract-critical ones (Outbox, MessageMap)
// on PostgreSQL and Redis too.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  AdapterKV,
  GhostStore,
  MessageMap,
  Outbox,
  OutboxFullError,
  PortalStore,
  type Store,
} from "../../src/store/index.js";
import { openTestStore, reopenTestStore, type Backend } from "./backends.js";

/** A fresh store for each describe block, closed after it. */
export function withStore(backend: Backend): () => Store {
  let store: Store;
  before(async () => {
    store = await openTestStore(backend, { fresh: true });
  });
  after(async () => {
    await store?.close();
  });
  return () => store;
}

export function ghostStoreCases(backend: Backend): void {
  describe(`GhostStore on ${backend.name}`, () => {
    const store = withStore(backend);
    it("links both ways, idempotently, and refuses a second owner", async () => {
      const ghosts = new GhostStore(store());
      const rec = await ghosts.link("alice", "@irc_alice:example.org");
      assert.deepEqual(rec, { remoteId: "alice", userId: "@irc_alice:example.org", profile: {} });
      assert.deepEqual(await ghosts.link("alice", "@irc_alice:example.org"), rec);
      assert.deepEqual(await ghosts.getByUserId("@irc_alice:example.org"), rec);
      assert.deepEqual(await ghosts.getByRemoteId("alice"), rec);
      await assert.rejects(ghosts.link("alice", "@irc_other:example.org"), /ghost alice is already linked/);
      await assert.rejects(ghosts.link("bob", "@irc_alice:example.org"), /already the ghost of alice/);
      assert.equal(await ghosts.getByRemoteId("bob"), undefined);
      const both = await Promise.allSettled([ghosts.link("carol", "@c:x"), ghosts.link("carol2", "@c:x")]);
      assert.deepEqual(
        both.map((r) => r.status),
        ["fulfilled", "rejected"],
        "concurrent links cannot both take one Matrix user",
      );
    });
    it("reports only changed profile fields, and records what was sent", async () => {
      const ghosts = new GhostStore(store());
      await ghosts.link("dave", "@irc_dave:example.org");
      assert.deepEqual(await ghosts.changedProfile("dave", { displayname: "Dave" }), { displayname: "Dave" });
      await ghosts.recordProfile("dave", { displayname: "Dave", avatarUrl: "mxc://x/1" });
      assert.deepEqual(
        await ghosts.changedProfile("dave", { displayname: "Dave", avatarUrl: "mxc://x/1" }),
        {},
      );
      assert.deepEqual(await ghosts.changedProfile("dave", { avatarUrl: null }), { avatarUrl: null });
      await ghosts.recordProfile("dave", { avatarUrl: null });
      assert.deepEqual((await ghosts.getByRemoteId("dave"))?.profile, {
        displayname: "Dave",
        avatarUrl: null,
      });
      await assert.rejects(
        ghosts.recordProfile("nobody", { displayname: "x" }),
        /ghost nobody is not linked/,
      );
    });
    it("unlinks both ways and ignores a dangling reverse index", async () => {
      const ghosts = new GhostStore(store());
      await ghosts.link("erin", "@irc_erin:example.org");
      assert.equal(await ghosts.unlink("erin"), true);
      assert.equal(await ghosts.unlink("erin"), false);
      assert.equal(await ghosts.getByUserId("@irc_erin:example.org"), undefined);
      // A crash after the index write, before the record: the index alone resolves to nothing.
      await store().namespace<string>("ghosts.by-user").set("@half:example.org", "half");
      assert.equal(await ghosts.getByUserId("@half:example.org"), undefined);
      await ghosts.link("half", "@half:example.org");
      assert.equal((await ghosts.getByUserId("@half:example.org"))?.remoteId, "half");
    });
  });
}

export function portalStoreCases(backend: Backend): void {
  describe(`PortalStore on ${backend.name}`, () => {
    const store = withStore(backend);
    it("looks portals up by remote id, room id and alias", async () => {
      const portals = new PortalStore<{ topic: string }>(store());
      const p = {
        remoteId: "#chan",
        roomId: "!r1:example.org",
        alias: "#irc_chan:example.org",
        metadata: { topic: "t" },
      };
      assert.deepEqual(await portals.link(p), p);
      assert.deepEqual(await portals.getByRemoteId("#chan"), p);
      assert.deepEqual(await portals.getByRoomId("!r1:example.org"), p);
      assert.deepEqual(await portals.getByAlias("#irc_chan:example.org"), p);
      await portals.setMetadata("#chan", { topic: "new" });
      assert.deepEqual((await portals.getByRoomId("!r1:example.org"))?.metadata, { topic: "new" });
    });
    it("refuses conflicting links and oversized metadata", async () => {
      const portals = new PortalStore(store());
      await portals.link({ remoteId: "#a", roomId: "!a:x", alias: "#x_a:x" });
      await assert.rejects(
        portals.link({ remoteId: "#a", roomId: "!other:x" }),
        /portal #a is already linked to !a:x/,
      );
      await assert.rejects(
        portals.link({ remoteId: "#b", roomId: "!a:x" }),
        /room !a:x is already the portal of #a/,
      );
      await assert.rejects(
        portals.link({ remoteId: "#b", roomId: "!b:x", alias: "#x_a:x" }),
        /alias #x_a:x already/,
      );
      await assert.rejects(
        portals.link({ remoteId: "#c", roomId: "!c:x", metadata: "x".repeat(20_000) }),
        /portal #c metadata is 20002 bytes as JSON; at most 16384/,
      );
      assert.equal(await portals.getByRoomId("!b:x"), undefined, "nothing half-written");
    });
    it("re-links after unlink (room upgrade) and moves the alias", async () => {
      const portals = new PortalStore(store());
      await portals.link({ remoteId: "#u", roomId: "!old:x", alias: "#x_u:x" });
      await portals.link({ remoteId: "#u", roomId: "!old:x", alias: "#x_u2:x" });
      assert.equal(await portals.getByAlias("#x_u:x"), undefined);
      assert.equal((await portals.getByAlias("#x_u2:x"))?.remoteId, "#u");
      assert.equal(await portals.unlink("#u"), true);
      assert.equal(await portals.getByRoomId("!old:x"), undefined);
      await portals.link({ remoteId: "#u", roomId: "!new:x" });
      assert.equal((await portals.getByRemoteId("#u"))?.roomId, "!new:x");
      assert.equal(await portals.getByRoomId("!old:x"), undefined);
    });
    it("moves a portal to its upgraded room, keeping relay, alias and visibility", async () => {
      const portals = new PortalStore(store());
      const before = {
        remoteId: "#m",
        roomId: "!m1:x",
        alias: "#x_m:x",
        relay: "bob",
        visibility: "private" as const,
      };
      await portals.link(before);
      await portals.link({ remoteId: "#other", roomId: "!o:x" });
      await assert.rejects(
        portals.move("#m", undefined, "!o:x"),
        /room !o:x is already the portal of #other/,
      );
      await assert.rejects(portals.move("#none", undefined, "!n:x"), /portal #none is not linked/);
      assert.deepEqual(await portals.move("#m", undefined, "!m2:x"), { ...before, roomId: "!m2:x" });
      assert.equal(await portals.getByRoomId("!m1:x"), undefined);
      assert.deepEqual(await portals.getByRoomId("!m2:x"), { ...before, roomId: "!m2:x" });
      assert.equal((await portals.getByAlias("#x_m:x"))?.roomId, "!m2:x");
    });
  });
}

export function messageMapCases(backend: Backend): void {
  describe(`MessageMap on ${backend.name}`, () => {
    const store = withStore(backend);
    const link = (room: string, n: number) => ({
      remoteRoomId: room,
      remoteId: `m${n}`,
      roomId: `!${room}:x`,
      eventId: `$${room}-${n}`,
    });
    it("resolves both ways, per room", async () => {
      const map = new MessageMap(store());
      await map.link(link("a", 1));
      await map.link({ ...link("b", 1), eventId: "$b-1" }); // same remote id, other room
      assert.deepEqual(await map.byRemoteId("a", "m1"), link("a", 1));
      assert.deepEqual(await map.byEventId("$b-1"), link("b", 1));
      assert.equal(await map.byRemoteId("a", "m2"), undefined);
      assert.equal(await map.byEventId("$nope"), undefined);
      await map.link({ ...link("a", 1), eventId: "$a-1-edited" }); // relink replaces
      assert.equal(await map.byEventId("$a-1"), undefined);
      assert.equal((await map.byRemoteId("a", "m1"))?.eventId, "$a-1-edited");
      assert.equal(await map.unlink("a", "m1"), true);
      assert.equal(await map.byEventId("$a-1-edited"), undefined);
      await assert.rejects(map.link({ ...link("a", 2), eventId: "" }), /eventId must be a non-empty string/);
    });
    it("keeps only the newest maxPerRoom links of a room", async () => {
      const map = new MessageMap(store(), { namespace: "bounded", maxPerRoom: 5 });
      for (let i = 0; i < 12; i++) await map.link(link("r", i));
      await map.link(link("r", 11)); // relinking the same does not use a slot
      for (let i = 0; i < 12; i++) {
        const kept = i >= 7;
        assert.equal((await map.byRemoteId("r", `m${i}`))?.eventId, kept ? `$r-${i}` : undefined, `m${i}`);
        assert.equal((await map.byEventId(`$r-${i}`))?.remoteId, kept ? `m${i}` : undefined, `$r-${i}`);
      }
    });
    it("links concurrently in one room without losing any", async () => {
      const map = new MessageMap(store(), { namespace: "conc" });
      await Promise.all(Array.from({ length: 40 }, (_, i) => map.link(link("c", i))));
      for (let i = 0; i < 40; i++) assert.equal((await map.byEventId(`$c-${i}`))?.remoteId, `m${i}`);
    });
  });
}

export function outboxCases(backend: Backend): void {
  describe(`Outbox on ${backend.name}`, () => {
    const store = withStore(backend);
    it("delivers in order, removing only on ack, with stable txnIds", async () => {
      const box = new Outbox<{ body: string }>(store());
      const a = await box.enqueue("!room:x", { body: "a" });
      const b = await box.enqueue("!room:x", { body: "b" });
      assert.deepEqual([a.seq, b.seq], [0, 1]);
      assert.notEqual(a.txnId, b.txnId);
      assert.deepEqual(await box.peek("!room:x"), a);
      assert.deepEqual(await box.peek("!room:x"), a, "peek does not remove");
      await assert.rejects(box.ack("!room:x", 1), /cannot acknowledge item 1 before item 0/);
      await box.ack("!room:x", 0);
      await box.ack("!room:x", 0); // a repeated ack is a no-op
      assert.deepEqual(await box.peek("!room:x"), b);
      assert.equal(await box.size("!room:x"), 1);
      await box.ack("!room:x", 1);
      assert.equal(await box.peek("!room:x"), undefined);
      assert.deepEqual(await box.rooms(), []);
    });
    it("keeps rooms apart and lists rooms with items", async () => {
      const box = new Outbox(store(), { namespace: "rooms" });
      await box.enqueue("r1", 1);
      await box.enqueue("r2", 2);
      await box.enqueue("r1", 3);
      assert.deepEqual((await box.rooms()).sort(), ["r1", "r2"]);
      assert.equal((await box.peek("r2"))?.payload, 2);
      await box.ack("r2", 0);
      assert.deepEqual(await box.rooms(), ["r1"]);
    });
    it("pending: every unacknowledged item, room by room in order, across pages", async () => {
      const box = new Outbox<number>(store(), { namespace: "pending" });
      for (let i = 0; i < 300; i++) await box.enqueue("big", i);
      await box.enqueue("small", 1000);
      await box.ack("big", 0);
      const seen: number[] = [];
      for await (const item of box.pending()) seen.push(item.payload);
      assert.equal(seen.length, 300);
      assert.deepEqual(
        seen.filter((n) => n < 1000),
        Array.from({ length: 299 }, (_, i) => i + 1),
      );
      assert.ok(seen.includes(1000));
    });
    it("stats: items, rooms with items and the oldest head's enqueue time", async () => {
      const box = new Outbox<number>(store(), { namespace: "stats" });
      assert.deepEqual(await box.stats(), { items: 0, rooms: 0, oldestEnqueuedAt: undefined });
      const first = await box.enqueue("r1", 1);
      await box.enqueue("r1", 2);
      const other = await box.enqueue("r2", 3);
      assert.deepEqual(await box.stats(), { items: 3, rooms: 2, oldestEnqueuedAt: first.enqueuedAt });
      await box.ack("r1", 0);
      await box.ack("r1", 1);
      assert.deepEqual(await box.stats(), { items: 1, rooms: 1, oldestEnqueuedAt: other.enqueuedAt });
    });
    it("keeps order under concurrent enqueues and refuses beyond maxPerRoom", async () => {
      const box = new Outbox<number>(store(), { namespace: "full", maxPerRoom: 30 });
      const items = await Promise.all(Array.from({ length: 30 }, (_, i) => box.enqueue("r", i)));
      assert.deepEqual(
        items.map((it) => it.seq),
        items.map((_, i) => i),
      );
      await assert.rejects(
        box.enqueue("r", 99),
        (err: Error) => err instanceof OutboxFullError && /holds 30/.test(err.message),
      );
      const seen: number[] = [];
      for (let item = await box.peek("r"); item; item = await box.peek("r")) {
        seen.push(item.payload);
        await box.ack("r", item.seq);
      }
      assert.deepEqual(
        seen,
        items.map((_, i) => i),
      );
    });
    it("prepend puts items ahead of the queue, in order, and refuses beyond maxPerRoom", async () => {
      const box = new Outbox<string>(store(), { namespace: "prepend", maxPerRoom: 5 });
      assert.deepEqual(await box.prepend("r", []), []);
      assert.deepEqual(await box.rooms(), [], "nothing prepended, nothing listed");
      await box.enqueue("r", "live 1");
      const first = await box.peek("r");
      await box.ack("r", first!.seq);
      await box.enqueue("r", "live 2");
      const history = await box.prepend("r", ["old 1", "old 2"]);
      assert.deepEqual(
        history.map((i) => i.seq),
        [-1, 0],
        "just ahead of the head (1)",
      );
      assert.notEqual(history[0]!.txnId, history[1]!.txnId);
      await assert.rejects(
        box.prepend("r", ["a", "b", "c"]),
        (err: Error) => err instanceof OutboxFullError && /holds 3 items; 3 more/.test(err.message),
      );
      // "Restart": the prepended items are durable and come first.
      const again = new Outbox<string>(store(), { namespace: "prepend", maxPerRoom: 5 });
      const seen: string[] = [];
      for (let item = await again.peek("r"); item; item = await again.peek("r")) {
        seen.push(item.payload);
        await again.ack("r", item.seq);
      }
      assert.deepEqual(seen, ["old 1", "old 2", "live 2"]);
      assert.deepEqual(await again.rooms(), []);
      await box.prepend("empty", ["only"]);
      assert.deepEqual(await box.rooms(), ["empty"], "an empty room is listed once it holds history");
      assert.equal((await box.peek("empty"))?.payload, "only");
    });
    it("survives a crash between send and ack, and between ack's two writes", async () => {
      const box = new Outbox<string>(store(), { namespace: "crash" });
      const first = await box.enqueue("r", "one");
      await box.enqueue("r", "two");
      // "Restart": a new Outbox on the same store; the unacked item comes back with its txnId.
      const again = new Outbox<string>(store(), { namespace: "crash" });
      assert.deepEqual(await again.rooms(), ["r"]);
      assert.deepEqual(await again.peek("r"), first);
      // A crash inside ack after the item was deleted, before the cursor moved:
      await store().namespace("crash.item").delete(`1:r\n0`);
      assert.equal((await again.peek("r"))?.payload, "two");
      await again.ack("r", 1);
      assert.equal(await again.size("r"), 0);
    });
    if (backend.persistent)
      it("persists across close and reopen", async () => {
        const s = await openTestStore(backend, { fresh: true });
        const item = await new Outbox<string>(s).enqueue("!r:x", "durable");
        await s.close();
        const reopened = await reopenTestStore(backend, s);
        try {
          const box = new Outbox<string>(reopened);
          assert.deepEqual(await box.rooms(), ["!r:x"]);
          assert.deepEqual(await box.peek("!r:x"), item);
        } finally {
          await reopened.close();
        }
      });
  });
}

export function adapterKvCases(backend: Backend): void {
  describe(`AdapterKV on ${backend.name}`, () => {
    const store = withStore(backend);
    it("gets, sets, deletes typed values in its own namespace", async () => {
      const kv = new AdapterKV<{ cursor: string; seen: number[] }>(store());
      await kv.set("cursor", "abc");
      await kv.set("seen", [1, 2]);
      assert.equal(await kv.get("cursor"), "abc");
      assert.deepEqual(await kv.get("seen"), [1, 2]);
      assert.equal(await kv.has("seen"), true);
      assert.equal(await kv.delete("seen"), true);
      assert.equal(await kv.get("seen"), undefined);
      assert.equal(await store().namespace("ghosts").get("cursor"), undefined, "apart from other namespaces");
    });
  });
}
