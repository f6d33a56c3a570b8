import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { openStore } from "../../../src/store/index.js";
import { TransactionJournal, type JournalRetention } from "../../../src/store/journal.js";
import type { Store } from "../../../src/store/index.js";
import { deferred, MapStore, tempDir } from "../../support/appservice/harness.js";

/** What a fresh journal on the same store (nothing in memory) knows of a transaction. */
async function stateOf(store: Store, txnId: string, retention?: JournalRetention) {
  const journal = new TransactionJournal(store, retention);
  const state = await journal.begin(txnId);
  journal.end(txnId);
  return { committed: state.committed, handled: [...state.handled].sort() };
}

/** Routes every `setMany` of the store (the journal's only write) through `around`. */
function interceptSetMany(store: MapStore, around: (write: () => Promise<void>) => Promise<void>): void {
  const original = store.namespace.bind(store);
  store.namespace = <V>(name: string) => {
    const inner = original<V>(name);
    const setMany = (entries: ReadonlyArray<readonly [string, V]>) => around(() => inner.setMany(entries));
    return { ...inner, setMany };
  };
}

describe("TransactionJournal", () => {
  it("records handled items per transaction, then commits it", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store);
    const first = await journal.begin("1");
    assert.deepEqual(first, { committed: false, handled: new Set() });
    await journal.markHandled("1", "$a");
    await journal.markHandled("1", "$c");
    journal.end("1");
    assert.deepEqual(await stateOf(store, "1"), { committed: false, handled: ["$a", "$c"] });
    assert.equal(journal.wasHandledRecently("$a"), true);
    assert.equal(journal.wasHandledRecently("$b"), false);
    assert.equal(await journal.isCommitted("1"), false);
    await journal.begin("1");
    await journal.commit("1");
    journal.end("1");
    assert.equal(await journal.isCommitted("1"), true);
    assert.deepEqual(await stateOf(store, "1"), { committed: true, handled: ["$a", "$c"] });
    assert.equal(await journal.isCommitted("2"), false);
    assert.equal(store.count("journal"), 3, "one record, one ring slot, the head");
  });

  it("reads records written as objects (before records were JSON strings) and ignores garbage", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store);
    await journal.markHandled("old-open", "$a");
    await journal.commit("old-done");
    const kv = store.namespace<unknown>("journal");
    for (const slot of [0, 1]) {
      const stored = await kv.get(`s:${slot}`);
      assert.equal(typeof stored, "string", "records are written as JSON strings");
      await kv.set(`s:${slot}`, JSON.parse(stored as string) as unknown); // the earlier layout
    }
    assert.deepEqual(await stateOf(store, "old-open"), { committed: false, handled: ["$a"] });
    assert.deepEqual(await stateOf(store, "old-done"), { committed: true, handled: [] });
    await kv.set("s:1", "{not json");
    assert.deepEqual(await stateOf(store, "old-done"), { committed: false, handled: [] });
  });

  it("reads a journal whose records are under per-transaction keys, and deletes them as their slots are reused", async () => {
    // The layout before records moved into their ring slots: `r:<slot>` -> `t:<digest>`, the
    // record under `t:<digest>`.
    const store = new MapStore();
    const kv = store.namespace<unknown>("journal");
    const digestOf = (id: string) => createHash("sha256").update(id, "utf8").digest("base64url");
    const legacy = [
      { id: "old-0", seq: 0, h: ["$a"], d: true },
      { id: "old-1", seq: 1, h: ["$b"] },
      { id: "old-2", seq: 2, h: ["$c", "$d"], d: true },
    ];
    for (const r of legacy) {
      await kv.set(`r:${r.seq}`, `t:${digestOf(r.id)}`);
      await kv.set(`t:${digestOf(r.id)}`, JSON.stringify(r));
    }
    await kv.set("head", 3);
    assert.deepEqual(await stateOf(store, "old-0", { transactions: 3 }), {
      committed: true,
      handled: ["$a"],
    });
    assert.deepEqual(await stateOf(store, "old-1", { transactions: 3 }), {
      committed: false,
      handled: ["$b"],
    });
    const journal = new TransactionJournal(store, { transactions: 3 });
    assert.equal(journal.wasHandledRecently("$d"), false);
    await journal.begin("new-0"); // warms up from the legacy records
    journal.end("new-0");
    assert.equal(journal.wasHandledRecently("$d"), true, "warm-up reads legacy records");
    // A retry of the open legacy transaction carries on in it.
    await journal.begin("old-1");
    await journal.markHandled("old-1", "$b2");
    await journal.commit("old-1");
    journal.end("old-1");
    assert.deepEqual(await stateOf(store, "old-1", { transactions: 3 }), {
      committed: true,
      handled: ["$b", "$b2"],
    });
    for (let i = 0; i < 3; i++) await journal.commit(`new-${i}`);
    const keys = store.keys("journal");
    assert.deepEqual(
      keys.filter((k) => k.startsWith("t:")),
      [],
      "every legacy record was deleted as its slot was reused",
    );
    assert.equal(await journal.isCommitted("old-0"), false, "forgotten as its slot was reused");
    for (let i = 0; i < 3; i++) assert.equal(await journal.isCommitted(`new-${i}`), true);
  });

  it("items belong to their transaction: another transaction's record does not list them", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store);
    await journal.markHandled("x", "$a");
    await journal.commit("y");
    assert.deepEqual(await stateOf(store, "x"), { committed: false, handled: ["$a"] });
    assert.deepEqual(await stateOf(store, "y"), { committed: true, handled: [] });
    assert.deepEqual(await stateOf(store, "$a"), { committed: false, handled: [] });
  });

  it("marking an item after the attempt ended (a late success) still records it", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store);
    await journal.begin("t");
    journal.end("t");
    await journal.markHandled("t", "$late");
    assert.deepEqual(await stateOf(store, "t"), { committed: false, handled: ["$late"] });
  });

  it("extras keys never collide with event ids or with other transactions' keys", () => {
    const a = TransactionJournal.extrasKey("1", "ephemeral");
    assert.notEqual(a, TransactionJournal.extrasKey("1", "to_device"));
    assert.notEqual(a, TransactionJournal.extrasKey("2", "ephemeral"));
    assert.notEqual(a, TransactionJournal.extrasKey("ephemeral", "1"));
    assert.ok(!a.startsWith("$"));
  });

  it("any string is a transaction id: unicode, slashes, traversal-looking, very long", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store);
    const ids = ["../..", "日本語🙂", "a/b/c", "x".repeat(10_000), "", "\u0000", "%2F"];
    for (const id of ids) await journal.commit(id);
    for (const id of ids)
      assert.equal((await stateOf(store, id)).committed, true, JSON.stringify(id.slice(0, 10)));
    assert.equal(await journal.isCommitted("../../"), false);
  });

  it("retention is bounded by count: the oldest are forgotten, storage stays bounded", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store, { transactions: 5 });
    for (let i = 0; i < 200; i++) {
      await journal.markHandled(`t${i}`, `$e${i}`);
      if (i % 2 === 0) await journal.commit(`t${i}`);
    }
    // records + ring slots + the head counter
    assert.ok(store.count("journal") <= 5 * 2 + 1, `keys: ${store.count("journal")}`);
    // A fresh journal on the same store (no in-memory cache) sees exactly the newest entries.
    for (let i = 195; i < 200; i++)
      assert.deepEqual(
        await stateOf(store, `t${i}`, { transactions: 5 }),
        { committed: i % 2 === 0, handled: [`$e${i}`] },
        `t${i}`,
      );
    for (let i = 0; i < 195; i++)
      assert.deepEqual(await stateOf(store, `t${i}`), { committed: false, handled: [] }, `t${i}`);
  });

  it("a transaction still open when the ring wraps keeps its slot: the others go round it", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store, { transactions: 3 });
    await journal.begin("long");
    await journal.markHandled("long", "$1");
    for (let i = 0; i < 5; i++) await journal.commit(`other${i}`);
    await journal.markHandled("long", "$2");
    journal.end("long");
    assert.deepEqual(await stateOf(store, "long", { transactions: 3 }), {
      committed: false,
      handled: ["$1", "$2"],
    });
    const committed = async (id: string) => (await stateOf(store, id, { transactions: 3 })).committed;
    assert.equal(await committed("other4"), true);
    assert.equal(await committed("other3"), true);
    assert.equal(await committed("other2"), false, "two slots were left for the others");
    assert.ok(store.count("journal") <= 3 * 2 + 1);
  });

  it("refuses to write when every ring slot belongs to an open transaction", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store, { transactions: 2 });
    for (const id of ["a", "b"]) {
      await journal.begin(id);
      await journal.markHandled(id, `$${id}`);
    }
    await journal.begin("c");
    await assert.rejects(journal.markHandled("c", "$c"), /all 2 ring slots belong to open transactions/);
    journal.end("c"); // that attempt fails
    journal.end("a");
    await journal.begin("c"); // the retry: a's slot is free once a ended
    await journal.markHandled("c", "$c");
    journal.end("c");
    journal.end("b");
    assert.deepEqual(await stateOf(store, "c", { transactions: 2 }), { committed: false, handled: ["$c"] });
    assert.deepEqual(await stateOf(store, "b", { transactions: 2 }), { committed: false, handled: ["$b"] });
  });

  it("after a restart numbering resumes past the old entries: nothing recent is evicted early", async () => {
    const store = new MapStore();
    const first = new TransactionJournal(store, { transactions: 100 });
    for (let i = 0; i < 30; i++) await first.commit(`a${i}`);
    const second = new TransactionJournal(store, { transactions: 100 });
    for (let i = 0; i < 30; i++) await second.commit(`b${i}`);
    const third = new TransactionJournal(store, { transactions: 100 });
    for (let i = 0; i < 30; i++) {
      assert.equal(await third.isCommitted(`a${i}`), true, `a${i}`);
      assert.equal(await third.isCommitted(`b${i}`), true, `b${i}`);
    }
    assert.ok(store.count("journal") <= 100 * 2 + 1);
  });

  it("a small journal keeps its newest entries across restarts", async () => {
    const store = new MapStore();
    for (let run = 0; run < 4; run++) {
      const journal = new TransactionJournal(store, { transactions: 5 });
      await journal.commit(`r${run}-a`);
      await journal.commit(`r${run}-b`);
    }
    const fresh = new TransactionJournal(store, { transactions: 5 });
    for (const id of ["r1-b", "r2-a", "r2-b", "r3-a", "r3-b"])
      assert.equal(await fresh.isCommitted(id), true, id);
  });

  it("group commit: concurrent marks of many transactions are written in few batches, none lost", async () => {
    const store = new MapStore();
    let writes = 0;
    interceptSetMany(store, (write) => (writes++, write()));
    const journal = new TransactionJournal(store, { transactions: 1000 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => journal.markHandled(`t${i % 10}`, `$c${i}`)));
    assert.ok(writes <= 2, `${writes} writes for 100 marks`);
    for (let t = 0; t < 10; t++)
      assert.equal((await stateOf(store, `t${t}`, { transactions: 1000 })).handled.length, 10);
  });

  it("an attempt that ends while its record is being written: a retry sees the item, nothing is lost", async () => {
    const store = new MapStore();
    const gate = deferred();
    const writing = deferred();
    interceptSetMany(store, async (write) => {
      writing.resolve();
      await gate.promise;
      return write();
    });
    const journal = new TransactionJournal(store);
    await journal.begin("t");
    const marked = journal.markHandled("t", "$x");
    await writing.promise;
    journal.end("t"); // e.g. another room's handler failed: the attempt answers 5xx now
    const retry = await journal.begin("t");
    assert.deepEqual([...retry.handled], ["$x"], "the retry knows the item being written");
    gate.resolve();
    await marked;
    journal.end("t");
    assert.deepEqual(await stateOf(store, "t"), { committed: false, handled: ["$x"] });
  });

  it("survives a reopen of a sqlite store", async () => {
    const dir = tempDir();
    try {
      const url = `sqlite://${dir.path}/j.db`;
      const s1 = await openStore(url);
      const j1 = new TransactionJournal(s1);
      await j1.commit("txn-1");
      await j1.markHandled("txn-2", "$ev");
      await s1.close();
      const s2 = await openStore(url);
      assert.deepEqual(await stateOf(s2, "txn-1"), { committed: true, handled: [] });
      assert.deepEqual(await stateOf(s2, "txn-2"), { committed: false, handled: ["$ev"] });
      assert.equal(await new TransactionJournal(s2).isCommitted("txn-3"), false);
      await s2.close();
    } finally {
      dir.remove();
    }
  });

  it("a failed write rejects and is not remembered", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store);
    const kv = store.namespace("journal");
    let fail = true;
    interceptSetMany(store, (write) => (fail ? Promise.reject(new Error("disk full")) : write()));
    const broken = new TransactionJournal(store);
    await assert.rejects(broken.commit("t"), /disk full/);
    fail = false;
    assert.equal(await broken.isCommitted("t"), false);
    await broken.commit("t");
    assert.equal(await broken.isCommitted("t"), true);
    assert.equal(await journal.isCommitted("t"), true);
    assert.ok((await kv.get("head")) !== undefined);
  });

  it("remembers between half of retention.events and all of it, the newest, and forgets the rest", async () => {
    const journal = new TransactionJournal(new MapStore(), { events: 4 });
    const items = Array.from({ length: 11 }, (_, i) => `$e${i}`);
    for (const item of items) {
      await journal.markHandled("t", item);
      const remembered = items.filter((x) => journal.wasHandledRecently(x));
      assert.ok(remembered.length <= 4, `at most 4 remembered: ${remembered.join(" ")}`);
      assert.ok(remembered.includes(item), "the newest is remembered");
    }
    assert.equal(journal.wasHandledRecently("$e10"), true);
    assert.equal(journal.wasHandledRecently("$e9"), true);
    for (const old of items.slice(0, 7)) assert.equal(journal.wasHandledRecently(old), false, old);
  });

  it("refuses a retention that is not a positive integer", () => {
    assert.throws(() => new TransactionJournal(new MapStore(), { transactions: 0 }), /journal\.transactions/);
    assert.throws(() => new TransactionJournal(new MapStore(), { events: 1.5 }), /journal\.events/);
  });
});
