import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Inbox, type InboxTransaction } from "../../../src/inbox/inbox.js";
import type { KeyValue } from "../../../src/store/store.js";
import { MapStore } from "../../support/appservice/harness.js";
import { ev, txn } from "../../store/inbox-cases.js";

const ids = (entry: InboxTransaction | undefined) =>
  entry?.items.map((i) => (i.kind === "event" ? i.event.event_id : i.kind));
/** Routes every setMany of the store through `intercept`, which calls `write` to let it through. */
function interceptSetMany(store: MapStore, intercept: (write: () => Promise<void>) => Promise<void>): void {
  const real = store.namespace.bind(store);
  store.namespace = <V>(name: string): KeyValue<V> => {
    const kv = real<V>(name);
    return { ...kv, setMany: (entries) => intercept(() => kv.setMany(entries)) };
  };
}
const handleAll = (inbox: Inbox, entry: InboxTransaction) =>
  Promise.all(entry.items.map((_, i) => inbox.markHandled(entry, i)));

describe("Inbox", () => {
  it("records a transaction once; a replay (same id, any body) is a no-op", async () => {
    const store = new MapStore();
    const inbox = new Inbox(store);
    const first = await inbox.record("1", txn(ev(1), ev(2)));
    assert.deepEqual(ids(first), ["$e1:x", "$e2:x"]);
    assert.equal(await inbox.record("1", txn(ev(3))), undefined);
    assert.equal(inbox.pendingItems, 2);
    assert.equal(inbox.pendingTransactions, 1);
  });

  it("leaves out events it recorded recently under another id, and duplicates within a body", async () => {
    const inbox = new Inbox(new MapStore());
    await inbox.record("1", txn(ev(1)));
    assert.deepEqual(ids(await inbox.record("2", txn(ev(1), ev(2), ev(2)))), ["$e2:x"]);
  });

  it("records data without event ids as items of their own", async () => {
    const inbox = new Inbox(new MapStore());
    const entry = await inbox.record("x", {
      events: [ev(1)],
      toDevice: [{ type: "m.room_key", sender: "@u:x", to_user_id: "@b:x", to_device_id: "D", content: {} }],
      deviceLists: { changed: ["@u:x"], left: [] },
      keyCounts: { oneTimeKeysCount: {}, unusedFallbackKeyTypes: {} },
    });
    assert.deepEqual(ids(entry), ["$e1:x", "to_device", "device_lists", "key_counts"]);
  });

  it("after a restart, replays what was not handled, oldest first, with what was handled skipped", async () => {
    const store = new MapStore();
    const a = new Inbox(store);
    const t1 = (await a.record("t1", txn(ev(1), ev(2), ev(3))))!;
    const t2 = (await a.record("t2", txn(ev(4, "!b:x"))))!;
    const t3 = (await a.record("t3", txn(ev(5))))!;
    await a.markHandled(t1, 0);
    await handleAll(a, t3);

    const b = new Inbox(store);
    const pending = await b.open();
    assert.deepEqual(
      pending.map((p) => [p.txnId, p.handled]),
      [
        ["t1", [true, false, false]],
        ["t2", [false]],
      ],
    );
    assert.deepEqual(ids(pending[0]), ids(t1));
    assert.equal(b.pendingItems, 3);
    assert.equal(await b.record("t3", txn(ev(9))), undefined, "a done transaction is remembered");
    assert.equal(await b.record("t2", txn(ev(9))), undefined, "so is a pending one");
    assert.deepEqual(ids(await b.record("t4", txn(ev(5), ev(2), ev(6)))), ["$e6:x"], "event ids too");
    void t2;
  });

  it("writes each batch as one setMany, and a done transaction keeps only its event ids", async () => {
    const store = new MapStore();
    let writes = 0;
    interceptSetMany(store, (write) => (writes++, write()));
    const inbox = new Inbox(store, { transactions: 100 });
    const [x, y] = await Promise.all([inbox.record("x", txn(ev(1), ev(2))), inbox.record("y", txn(ev(3)))]);
    assert.equal(writes, 1, "two transactions recorded in one batch");
    await Promise.all([handleAll(inbox, x!), handleAll(inbox, y!)]);
    assert.equal(writes, 2, "every mark, and both done records, in one more");
    const slot = [...store.keys("inbox")].find((k) => k.startsWith("e:"))!;
    assert.match(String(store.data.get(`inbox:${slot}`)), /^\{"seq":\d+,"i":\["\$e/);
    assert.equal(store.keys("inbox").filter((k) => k.startsWith("h:")).length, 0, "no handled marks left");
    assert.equal(inbox.pendingItems, 0);
  });

  it("reuses ring slots, but never one whose transaction is still pending", async () => {
    const store = new MapStore();
    const inbox = new Inbox(store, { transactions: 4 });
    const stuck = (await inbox.record("stuck", txn(ev(0))))!;
    for (let i = 1; i <= 10; i++) await handleAll(inbox, (await inbox.record(`t${i}`, txn(ev(i))))!);
    assert.equal(store.keys("inbox").filter((k) => k.startsWith("r:")).length, 4, "bounded by the ring");
    const reopened = new Inbox(store, { transactions: 4 });
    const pending = await reopened.open();
    assert.deepEqual(
      pending.map((p) => p.txnId),
      ["stuck"],
    );
    assert.deepEqual(ids(pending[0]), ids(stuck));
    assert.equal(await reopened.record("t10", txn(ev(99))), undefined, "the newest are remembered");
    assert.ok(await reopened.record("t1", txn(ev(98))), "the oldest were forgotten");
  });

  it("is full past maxPendingItems (never when empty), and when half the ring is pending", async () => {
    const inbox = new Inbox(new MapStore(), { maxPendingItems: 3, transactions: 100 });
    assert.equal(inbox.isFull(50), false, "an empty inbox takes any transaction");
    const t = (await inbox.record("a", txn(ev(1), ev(2))))!;
    assert.equal(inbox.isFull(1), false);
    assert.equal(inbox.isFull(2), true);
    await handleAll(inbox, t);
    assert.equal(inbox.isFull(2), false);
    const small = new Inbox(new MapStore(), { maxPendingItems: 1_000, transactions: 4 });
    await small.record("a", txn(ev(1)));
    assert.equal(small.isFull(1), false);
    await small.record("b", txn(ev(2)));
    assert.equal(small.isFull(1), true);
  });

  it("a record that could not be written is not remembered: the homeserver's retry records it", async () => {
    const store = new MapStore();
    let broken = true;
    interceptSetMany(store, (write) => (broken ? Promise.reject(new Error("disk full")) : write()));
    const inbox = new Inbox(store);
    await inbox.open();
    await assert.rejects(inbox.record("t", txn(ev(1))), /disk full/);
    assert.equal(inbox.pendingItems, 0);
    broken = false;
    assert.deepEqual(ids(await inbox.record("t", txn(ev(1)))), ["$e1:x"]);
  });

  it("a handled mark that failed is written again by rewrite", async () => {
    const store = new MapStore();
    let broken = false;
    interceptSetMany(store, (write) => (broken ? Promise.reject(new Error("down")) : write()));
    const inbox = new Inbox(store);
    const t = (await inbox.record("t", txn(ev(1), ev(2))))!;
    broken = true;
    await assert.rejects(inbox.markHandled(t, 0), /down/);
    broken = false;
    await inbox.rewrite(t);
    const pending = await new Inbox(store).open();
    assert.deepEqual(pending[0]?.handled, [true, false]);
  });

  it("refuses bad options naming them", () => {
    assert.throws(
      () => new Inbox(new MapStore(), { transactions: 0 }),
      /inbox\.transactions must be a positive integer/,
    );
    assert.throws(() => new Inbox(new MapStore(), { maxPendingItems: 1.5 }), /inbox\.maxPendingItems/);
  });
});
