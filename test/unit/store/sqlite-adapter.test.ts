import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { createSqliteAdapter, type SqliteAdapterOptions } from "../../../src/store/sqlite-adapter.js";
import { openStore } from "../../../src/store/index.js";

/** The table exactly as @keyv/sqlite 4.0.8 created it (as sqlite_master keeps it). */
const OLD_SCHEMA = "CREATE TABLE bridgekit(key VARCHAR(255) PRIMARY KEY, value TEXT )";

let dir: string;
let files = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "bridgekit-sqlite-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function options(overrides: Partial<SqliteAdapterOptions> = {}): SqliteAdapterOptions {
  return {
    path: join(dir, `db-${++files}.db`),
    table: "bridgekit",
    synchronous: "NORMAL",
    openTimeoutMs: 1_000,
    busyTimeoutMs: 1_000,
    ...overrides,
  };
}

describe("sqlite adapter (better-sqlite3)", () => {
  it("opens a file written in @keyv/sqlite's layout and keeps that layout", async () => {
    const path = join(dir, "old.db");
    const old = new Database(path);
    old.exec(`CREATE TABLE IF NOT EXISTS bridgekit(key VARCHAR(255) PRIMARY KEY, value TEXT )`);
    // Rows as keyv 5 over @keyv/sqlite wrote them: the serializer's JSON, with expiry if any.
    const insert = old.prepare("INSERT INTO bridgekit (key, value) VALUES (?, ?)");
    insert.run("old:ns:k", JSON.stringify({ value: { a: [1, "é"], n: null } }));
    insert.run("old:ns:t", JSON.stringify({ value: "x", expires: Date.now() + 3_600_000 }));
    insert.run("old:ns:gone", JSON.stringify({ value: "y", expires: Date.now() - 1 }));
    old.close();

    const store = await openStore(`sqlite://${path}`, { prefix: "old" });
    const kv = store.namespace<unknown>("ns");
    assert.deepEqual(await kv.getMany(["k", "t", "gone"]), [{ a: [1, "é"], n: null }, "x", undefined]);
    await kv.set("new", [true]);
    await store.close();

    const check = new Database(path, { readonly: true });
    try {
      const tables = check.prepare("SELECT sql FROM sqlite_master WHERE type = 'table'").pluck().all();
      assert.deepEqual(tables, [OLD_SCHEMA]);
      assert.equal(check.pragma("journal_mode", { simple: true }), "wal");
      const value = check.prepare("SELECT value FROM bridgekit WHERE key = 'old:ns:new'").pluck().get();
      assert.equal(value, JSON.stringify({ value: [true] }), "values are keyv's serialized strings");
    } finally {
      check.close();
    }
  });

  it("creates the table as @keyv/sqlite did, in WAL mode, with the synchronous pragma asked for", async () => {
    const normal = await createSqliteAdapter(options());
    const full = await createSqliteAdapter(options({ synchronous: "FULL" }));
    try {
      const schema = normal.db.prepare("SELECT sql FROM sqlite_master WHERE name = 'bridgekit'").pluck();
      assert.equal(schema.get(), OLD_SCHEMA);
      assert.equal(normal.db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(normal.db.pragma("synchronous", { simple: true }), 1, "NORMAL");
      assert.equal(full.db.pragma("synchronous", { simple: true }), 2, "FULL");
      assert.equal(normal.db.pragma("busy_timeout", { simple: true }), 1_000);
    } finally {
      await normal.disconnect();
      await full.disconnect();
    }
  });

  it("gets, sets and deletes values as the strings it was given", async () => {
    const a = await createSqliteAdapter(options());
    try {
      assert.equal(await a.get("k"), undefined);
      assert.equal(await a.has("k"), false);
      await a.set("k", '{"value":1}');
      await a.set("k", '{"value":2}');
      assert.equal(await a.get("k"), '{"value":2}');
      assert.equal(await a.has("k"), true);
      await a.setMany([
        { key: "x", value: "1" },
        { key: "y", value: "2" },
        { key: "x", value: "3" },
      ]);
      assert.deepEqual(await a.getMany(["y", "missing", "x", "y"]), ["2", undefined, "3", "2"]);
      assert.deepEqual(await a.getMany([]), []);
      assert.deepEqual(await a.hasMany(["x", "missing", "k"]), [true, false, true]);
      assert.equal(await a.delete("k"), true);
      assert.equal(await a.delete("k"), false);
      assert.equal(await a.deleteMany(["nothing", "here"]), false);
      assert.equal(await a.deleteMany([]), false);
      assert.equal(await a.deleteMany(["x", "nothing"]), true);
      assert.deepEqual(await a.getMany(["x", "y"]), [undefined, "2"]);
    } finally {
      await a.disconnect();
    }
  });

  it("writes a batch whole or not at all, and rejects instead of throwing", async () => {
    const a = await createSqliteAdapter(options());
    try {
      await a.set("kept", "old");
      let pending: Promise<void> | undefined;
      assert.doesNotThrow(() => {
        // Only strings are stored: the second row fails after the first was written.
        pending = a.setMany([
          { key: "kept", value: "new" },
          { key: "bad", value: { not: "a string" } },
        ]);
      });
      await assert.rejects(pending!, /the value of bad is not a serialized string \(object\)/);
      assert.deepEqual(await a.getMany(["kept", "bad"]), ["old", undefined], "rolled back");
    } finally {
      await a.disconnect();
    }
  });

  it("clears only its namespace's keys when Keyv gives it one", async () => {
    const a = await createSqliteAdapter(options());
    try {
      await a.setMany(
        ["ns:a", "ns:b:c", "NS:upper", "ns;x", "nsx:y", "other:z"].map((key) => ({ key, value: "v" })),
      );
      a.namespace = "ns";
      await a.clear();
      assert.deepEqual(await a.hasMany(["ns:a", "ns:b:c", "NS:upper", "ns;x", "nsx:y", "other:z"]), [
        false,
        false,
        true,
        true,
        true,
        true,
      ]);
      a.namespace = undefined;
      await a.clear();
      assert.deepEqual(await a.hasMany(["NS:upper", "other:z"]), [false, false]);
    } finally {
      await a.disconnect();
    }
  });

  it("rejects operations after disconnect", async () => {
    const a = await createSqliteAdapter(options());
    await a.disconnect();
    await a.disconnect();
    let pending: Promise<unknown> | undefined;
    assert.doesNotThrow(() => {
      pending = a.get("k");
    });
    await assert.rejects(pending!, /database connection is not open/);
    await assert.rejects(a.setMany([{ key: "k", value: "v" }]), /database connection is not open/);
  });

  it("fails to open what is not a database", async () => {
    await assert.rejects(createSqliteAdapter(options({ path: dir })), /unable to open database file/);
    await assert.rejects(
      createSqliteAdapter(options({ path: "/proc/x.db" })),
      /unable to open database file/,
    );
  });
});
