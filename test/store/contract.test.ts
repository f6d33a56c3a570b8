// The Store contract, run on every backend: memory, sqlite (a temp file), PostgreSQL, Redis.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { StoreError, type Store } from "../../src/store/index.js";
import { BACKENDS, openTestStore, uniquePrefix } from "./backends.js";

const sample = {
  nested: { a: [1, 2, { b: null, c: [true, false] }], d: { e: { f: "deep" } } },
  unicode: "héllo wörld — 你好 🌍 \u0000 \u2028",
  colon: ":base64:not-a-buffer",
  doubleColon: "::x",
  empty: { arr: [], obj: {}, str: "" },
  numbers: [0, -1, 1.5, 1e21, Number.MAX_SAFE_INTEGER],
};

for (const backend of BACKENDS) {
  describe(`store contract: ${backend.name}`, () => {
    let store: Store;
    before(async () => {
      store = await openTestStore(backend, { fresh: true });
    });
    after(async () => {
      await store?.close();
    });

    it("get/set/delete/has/getMany", async () => {
      const kv = store.namespace<{ n: number }>("basic");
      assert.equal(await kv.get("a"), undefined);
      assert.equal(await kv.has("a"), false);
      await kv.set("a", { n: 1 });
      await kv.set("b", { n: 2 });
      assert.deepEqual(await kv.get("a"), { n: 1 });
      assert.equal(await kv.has("a"), true);
      assert.deepEqual(await kv.getMany(["b", "missing", "a"]), [{ n: 2 }, undefined, { n: 1 }]);
      assert.deepEqual(await kv.getMany([]), []);
      await kv.set("a", { n: 3 });
      assert.deepEqual(await kv.get("a"), { n: 3 });
      assert.equal(await kv.delete("a"), true);
      assert.equal(await kv.delete("a"), false);
      assert.equal(await kv.get("a"), undefined);
      assert.equal(await kv.has("a"), false);
    });

    it("setMany and deleteMany: one batch, last value wins, absent keys ignored", async () => {
      const kv = store.namespace<unknown>("batch");
      await kv.set("keep", "kept");
      await kv.setMany([
        ["a", { n: 1 }],
        ["b", "two"],
        ["a", { n: 3 }],
        ["c", null],
        ["d", sample],
      ]);
      assert.deepEqual(await kv.getMany(["a", "b", "c", "d", "keep"]), [
        { n: 3 },
        "two",
        null,
        sample,
        "kept",
      ]);
      await kv.setMany([["b", "overwritten"]]);
      assert.equal(await kv.get("b"), "overwritten");
      await kv.setMany([]);
      await kv.deleteMany(["a", "b", "missing", "a"]);
      assert.deepEqual(await kv.getMany(["a", "b", "c", "keep"]), [undefined, undefined, null, "kept"]);
      await kv.deleteMany([]);
      await kv.deleteMany(["nothing", "here"]);
      assert.equal(await kv.get("keep"), "kept");
      const many = Array.from({ length: 2000 }, (_, i) => [`k${i}`, i] as const);
      await kv.setMany(many);
      assert.deepEqual(
        await kv.getMany(many.map(([k]) => k)),
        many.map(([, v]) => v),
      );
      await kv.deleteMany(many.map(([k]) => k));
      assert.deepEqual(await kv.getMany(["k0", "k1999"]), [undefined, undefined]);
      await assert.rejects(kv.setMany([["x", undefined]]), /setMany batch:x: value is undefined/);
      await assert.rejects(kv.setMany([["", 1]]), /setMany batch: key must be a non-empty string/);
      assert.equal(await kv.get("x"), undefined, "a refused batch writes nothing");
    });

    it("keeps namespaces apart, and stores with different prefixes apart", async () => {
      const one = store.namespace<string>("one");
      const two = store.namespace<string>("two");
      await one.set("k", "in one");
      assert.equal(await two.get("k"), undefined);
      await two.set("k", "in two");
      assert.equal(await one.get("k"), "in one");
      assert.equal(await store.namespace<string>("one").get("k"), "in one", "same name, same data");
      if (backend.name === "sqlite") return; // a fresh file per store; nothing shared to test
      const other = await openTestStore(backend, {
        url: backend.name === "memory" ? "memory://" : undefined,
      });
      try {
        assert.notEqual(other.prefix, store.prefix);
        assert.equal(await other.namespace<string>("one").get("k"), undefined);
      } finally {
        await other.close();
      }
    });

    it("round-trips JSON values: nested, unicode, colon strings, null, large", async () => {
      const kv = store.namespace<unknown>("json");
      await kv.set("sample", sample);
      assert.deepEqual(await kv.get("sample"), sample);
      await kv.set("null", null);
      assert.equal(await kv.get("null"), null);
      assert.equal(await kv.has("null"), true);
      for (const v of [0, false, "", "plain", [null]]) {
        await kv.set("scalar", v);
        assert.deepEqual(await kv.get("scalar"), v);
      }
      const large = { text: "x€".repeat(50_000), list: Array.from({ length: 1000 }, (_, i) => ({ i })) };
      await kv.set("large", large);
      assert.deepEqual(await kv.get("large"), large);
      assert.ok(JSON.stringify(large).length > 100_000);
    });

    it("accepts long and unicode keys and keeps them distinct", async () => {
      const kv = store.namespace<number>("keys");
      const long = "!" + "r".repeat(300) + ":example.org";
      const longer = long + "x";
      await kv.set(long, 1);
      await kv.set(longer, 2);
      await kv.set("ключ 🗝", 3);
      await kv.set("a:b:c", 4);
      assert.deepEqual(await kv.getMany([long, longer, "ключ 🗝", "a:b:c"]), [1, 2, 3, 4]);
      assert.equal(await kv.delete(long), true);
      assert.equal(await kv.get(longer), 2);
    });

    it("refuses bad keys, undefined values and bad TTLs with errors naming them", async () => {
      const kv = store.namespace<unknown>("bad");
      await assert.rejects(kv.get(""), /key must be a non-empty string/);
      await assert.rejects(kv.set("k", undefined), /bad:k: value is undefined/);
      await assert.rejects(kv.set("k", 1, -5), /ttlMs must be a positive number, got -5/);
      await assert.rejects(kv.set("k", 1, Number.NaN), /ttlMs/);
      assert.throws(() => store.namespace("has space"), /namespace "has space" is not an identifier/);
      assert.equal(await kv.has("k"), false, "nothing was written");
    });

    it("expires values after their TTL", async () => {
      const kv = store.namespace<string>("ttl");
      await kv.set("short", "v", 150);
      await kv.set("long", "v", 60_000);
      await kv.set("forever", "v");
      assert.equal(await kv.get("short"), "v");
      await sleep(400);
      assert.equal(await kv.get("short"), undefined);
      assert.equal(await kv.has("short"), false);
      assert.deepEqual(await kv.getMany(["short", "long", "forever"]), [undefined, "v", "v"]);
      await kv.set("short", "again");
      await sleep(200);
      assert.equal(await kv.get("short"), "again", "a set without TTL clears the old expiry");
    });

    it("handles concurrent writes", async () => {
      const kv = store.namespace<number>("concurrent");
      const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
      await Promise.all(keys.map((k, i) => kv.set(k, i)));
      assert.deepEqual(
        await kv.getMany(keys),
        keys.map((_, i) => i),
      );
      await Promise.all(Array.from({ length: 50 }, (_, i) => kv.set("same", i)));
      const last = await kv.get("same");
      assert.ok(typeof last === "number" && last >= 0 && last < 50);
    });

    it("close() waits for pending writes, is idempotent, and later calls reject", async () => {
      const s = await openTestStore(backend, { fresh: true });
      const kv = s.namespace<number>("closing");
      const writes = Array.from({ length: 100 }, (_, i) => kv.set(`w${i}`, i));
      const closed = s.close();
      assert.equal(s.close(), closed, "every close() returns the same promise");
      await closed;
      await Promise.all(writes); // all resolved, none rejected
      await assert.rejects(kv.get("w1"), (err: Error) => {
        assert.ok(err instanceof StoreError);
        assert.match(err.message, /closing:w1: the store is closed/);
        return true;
      });
      await assert.rejects(kv.set("x", 1), /the store is closed/);
      await s.close();
      if (!backend.persistent) return;
      const reopened = await openTestStore(backend, { prefix: s.prefix, url: urlOf(s, backend.url) });
      try {
        const values = await reopened.namespace<number>("closing").getMany(writes.map((_, i) => `w${i}`));
        assert.deepEqual(
          values,
          writes.map((_, i) => i),
        );
      } finally {
        await reopened.close();
      }
    });

    if (backend.persistent) {
      it("keeps data across close and reopen", async () => {
        const prefix = uniquePrefix("reopen");
        const first = await openTestStore(backend, { prefix });
        await first.namespace<object>("persist").set("k", sample, 60_000);
        await first.namespace<string>("persist").set("gone", "x", 100);
        await first.close();
        await sleep(200);
        const second = await openTestStore(backend, { prefix });
        try {
          assert.deepEqual(await second.namespace<object>("persist").get("k"), sample);
          assert.equal(await second.namespace<string>("persist").get("gone"), undefined);
        } finally {
          await second.close();
        }
      });
    }
  });
}

/** The URL a test store was opened with (sqlite stores get their own file). */
function urlOf(store: Store, fallback: string): string {
  if (store.backend !== "sqlite") return fallback;
  return `sqlite://${new URL(store.description).pathname}`;
}
