import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openStore } from "../../../src/store/index.js";
import { TransactionJournal } from "../../../src/store/journal.js";
import { MapStore, tempDir } from "../../support/appservice/harness.js";

describe("TransactionJournal", () => {
  it("commits transactions and records handled items", async () => {
    const journal = new TransactionJournal(new MapStore());
    assert.equal(await journal.isCommitted("1"), false);
    await journal.commit("1");
    assert.equal(await journal.isCommitted("1"), true);
    assert.equal(await journal.isCommitted("2"), false);
    await journal.markHandled("$a");
    await journal.markHandled("$c");
    assert.deepEqual([...(await journal.handledAmong(["$a", "$b", "$c"]))].sort(), ["$a", "$c"]);
    assert.equal(await journal.isHandled("$b"), false);
    assert.equal(journal.wasHandledRecently("$a"), true);
    assert.equal(journal.wasHandledRecently("$b"), false);
  });

  it("transaction ids and event ids are separate: the same string in one is not in the other", async () => {
    const journal = new TransactionJournal(new MapStore());
    await journal.commit("x");
    assert.equal(await journal.isHandled("x"), false);
    await journal.markHandled("y");
    assert.equal(await journal.isCommitted("y"), false);
  });

  it("extras keys never collide with event ids or with other transactions' keys", () => {
    const a = TransactionJournal.extrasKey("1", "ephemeral");
    assert.notEqual(a, TransactionJournal.extrasKey("1", "to_device"));
    assert.notEqual(a, TransactionJournal.extrasKey("2", "ephemeral"));
    assert.notEqual(a, TransactionJournal.extrasKey("ephemeral", "1"));
    assert.ok(!a.startsWith("$"));
  });

  it("any string is a key: unicode, slashes, traversal-looking, very long", async () => {
    const journal = new TransactionJournal(new MapStore());
    const ids = ["../..", "日本語🙂", "a/b/c", "x".repeat(10_000), "", "\u0000", "%2F"];
    for (const id of ids) await journal.commit(id);
    for (const id of ids) assert.equal(await journal.isCommitted(id), true, JSON.stringify(id.slice(0, 10)));
    assert.equal(await journal.isCommitted("../../"), false);
  });

  it("retention is bounded by count: the oldest are forgotten, storage stays bounded", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store, { transactions: 5, events: 20 });
    for (let i = 0; i < 200; i++) await journal.commit(`t${i}`);
    for (let i = 0; i < 500; i++) await journal.markHandled(`$e${i}`);
    // members + ring slots + the head counter
    assert.ok(store.count("journal-txn") <= 5 * 2 + 1, `txn keys: ${store.count("journal-txn")}`);
    assert.ok(store.count("journal-event") <= 20 * 2 + 1, `event keys: ${store.count("journal-event")}`);
    // A fresh journal on the same store (no in-memory cache) sees exactly the newest entries.
    const fresh = new TransactionJournal(store, { transactions: 5, events: 20 });
    for (let i = 195; i < 200; i++) assert.equal(await fresh.isCommitted(`t${i}`), true, `t${i}`);
    for (let i = 0; i < 195; i++) assert.equal(await fresh.isCommitted(`t${i}`), false, `t${i}`);
    const handled = await fresh.handledAmong(Array.from({ length: 500 }, (_, i) => `$e${i}`));
    assert.equal(handled.size, 20);
    assert.ok(handled.has("$e499") && handled.has("$e480") && !handled.has("$e479"));
  });

  it("marking the same item twice uses one slot", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store, { events: 3 });
    await journal.markHandled("$a");
    await journal.markHandled("$a");
    await journal.markHandled("$b");
    await journal.markHandled("$c");
    const fresh = new TransactionJournal(store, { events: 3 });
    assert.deepEqual([...(await fresh.handledAmong(["$a", "$b", "$c"]))].sort(), ["$a", "$b", "$c"]);
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
    assert.ok(store.count("journal-txn") <= 100 * 2 + 1);
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

  it("concurrent adds are serialised: every entry is kept and none share a slot", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store, { events: 1000 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => journal.markHandled(`$c${i}`)));
    const fresh = new TransactionJournal(store, { events: 1000 });
    assert.equal((await fresh.handledAmong(Array.from({ length: 100 }, (_, i) => `$c${i}`))).size, 100);
  });

  it("survives a reopen of a sqlite store", async () => {
    const dir = tempDir();
    try {
      const url = `sqlite://${dir.path}/j.db`;
      const s1 = await openStore(url);
      const j1 = new TransactionJournal(s1);
      await j1.commit("txn-1");
      await j1.markHandled("$ev");
      await s1.close();
      const s2 = await openStore(url);
      const j2 = new TransactionJournal(s2);
      assert.equal(await j2.isCommitted("txn-1"), true);
      assert.equal(await j2.isHandled("$ev"), true);
      assert.equal(await j2.isCommitted("txn-2"), false);
      await s2.close();
    } finally {
      dir.remove();
    }
  });

  it("a failed write rejects and is not remembered", async () => {
    const store = new MapStore();
    const journal = new TransactionJournal(store);
    const kv = store.namespace("journal-txn");
    const original = store.namespace.bind(store);
    let fail = true;
    store.namespace = <V>(name: string) => {
      const inner = original<V>(name);
      return {
        ...inner,
        set: (k: string, v: V) => (fail ? Promise.reject(new Error("disk full")) : inner.set(k, v)),
      };
    };
    const broken = new TransactionJournal(store);
    await assert.rejects(broken.commit("t"), /disk full/);
    fail = false;
    assert.equal(await broken.isCommitted("t"), false);
    await broken.commit("t");
    assert.equal(await broken.isCommitted("t"), true);
    assert.equal(await journal.isCommitted("t"), true);
    assert.ok((await kv.get("head")) !== undefined);
  });

  it("refuses a retention that is not a positive integer", () => {
    assert.throws(() => new TransactionJournal(new MapStore(), { transactions: 0 }), /journal\.transactions/);
    assert.throws(() => new TransactionJournal(new MapStore(), { events: 1.5 }), /journal\.events/);
  });
});
