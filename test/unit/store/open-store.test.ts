import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, describeStoreUrl, sqlitePath, StoreError } from "../../../src/store/index.js";
import { storageKey, MAX_STORED_KEY_BYTES } from "../../../src/store/storage-key.js";

describe("openStore", () => {
  it("rejects an unsupported scheme, naming the masked URL", async () => {
    await assert.rejects(openStore("mysql://root:pw@localhost/db"), (err: Error) => {
      assert.match(err.message, /store URL "mysql:\/\/root:\*\*\*@localhost\/db" has an unsupported scheme/);
      return true;
    });
  });

  it("rejects bad prefixes and options", async () => {
    await assert.rejects(
      openStore("memory://", { prefix: "has space" }),
      /store prefix "has space" is not valid/,
    );
    await assert.rejects(openStore("memory://", { prefix: "" }), /store prefix "" is not valid/);
    await assert.rejects(
      openStore("memory://", { connectTimeoutMs: 0 }),
      /connectTimeoutMs must be a positive/,
    );
  });

  it("fails at once with the URL when the sqlite file cannot be created", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bridgekit-open-"));
    try {
      writeFileSync(join(dir, "afile"), "x");
      const url = `sqlite://${join(dir, "afile", "sub", "bridge.db")}`;
      await assert.rejects(openStore(url), (err: Error) => {
        assert.ok(err instanceof StoreError);
        assert.ok(err.message.startsWith(`store ${url}: cannot open:`), err.message);
        return true;
      });
      const dirAsFile = `sqlite://${dir}`; // a folder, not a database file
      await assert.rejects(openStore(dirAsFile), /cannot open/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails at once, naming the URL, when the sqlite file's folder or file cannot be made", async () => {
    // mkdirSync(…, { recursive: true }) used to spin forever on /proc/nope; the driver
    // itself refuses /proc/x.db.
    for (const url of ["sqlite:///proc/nope/x.db", "sqlite:///proc/x.db"]) {
      await assert.rejects(openStore(url, { connectTimeoutMs: 1_000 }), (err: Error) => {
        assert.ok(err instanceof StoreError);
        assert.ok(err.message.startsWith(`store ${url}: cannot open:`), err.message);
        return true;
      });
    }
  });

  it("resolves relative sqlite paths against baseDir and creates the folder", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bridgekit-open-"));
    try {
      const store = await openStore("sqlite://data/bridge.db", { baseDir: dir });
      assert.equal(store.backend, "sqlite");
      assert.equal(store.prefix, "bridgekit");
      await store.namespace<number>("n").set("k", 1);
      await store.close();
      assert.ok(existsSync(join(dir, "data", "bridge.db")));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("masks passwords and parses sqlite paths", () => {
    assert.equal(describeStoreUrl("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
    assert.equal(sqlitePath("sqlite:///abs/x.db", "/base"), "/abs/x.db");
    assert.equal(sqlitePath("sqlite://rel/x.db", "/base"), "/base/rel/x.db");
    assert.throws(() => sqlitePath("sqlite://", "/base"), /names no file/);
  });
});

describe("storageKey", () => {
  it("keeps short keys readable and hashes long ones into a separate space", () => {
    assert.equal(storageKey("p", "ns", "k"), "p:ns:k");
    const long = "é".repeat(200);
    const hashed = storageKey("p", "ns", long);
    assert.match(hashed, /^p:ns#[0-9a-f]{64}$/);
    assert.ok(Buffer.byteLength(hashed) <= MAX_STORED_KEY_BYTES);
    assert.notEqual(storageKey("p", "ns", long + "x"), hashed);
    assert.equal(storageKey("p", "ns", long), hashed, "deterministic");
  });
});
