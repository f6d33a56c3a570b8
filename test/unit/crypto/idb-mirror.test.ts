// The IndexedDB mirror (src/crypto/idb-mirror.ts) through the plain IndexedDB API, for the
// paths the Rust store rarely takes: range deletes, clear(), an aborted transaction, a
// store deleted by an upgrade, binary and array keys, indexes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openStore } from "../../../src/store/index.js";
import type { JsonValue } from "../../../src/store/json.js";
import { newIndexedDb } from "../../../src/crypto/fake-indexeddb.js";
import { IdbMirror } from "../../../src/crypto/idb-mirror.js";
import { silentLogger } from "../../../src/common/logger.js";

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return */
function req<T>(r: any): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result as T);
    r.onerror = () => reject(new Error(String(r.error)));
  });
}

function open(factory: any, version: number, upgrade: (db: any) => void = () => undefined): Promise<any> {
  const r = factory.open("db", version);
  r.onupgradeneeded = () => upgrade(r.result);
  return req(r);
}

function done(tx: any): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(new Error("aborted"));
  });
}

async function dump(factory: any, version: number): Promise<Record<string, unknown>> {
  const db = await open(factory, version);
  const out: Record<string, unknown> = {};
  for (const name of [...db.objectStoreNames]) {
    const store = db.transaction([name]).objectStore(name);
    out[name] = { keys: await req(store.getAllKeys()), values: await req(store.getAll()) };
    if (name === "indexed") out.byTag = await req(store.index("tag").getAllKeys("x"));
  }
  db.close();
  return out;
}

describe("IdbMirror", () => {
  it("reloads exactly what was committed: puts, range deletes, clear, upgrades; never an aborted transaction", async () => {
    const store = await openStore("memory://");
    const kv = store.namespace<JsonValue>("crypto");
    const factory = await newIndexedDb();
    const mirror = await IdbMirror.load(kv, "t", factory, silentLogger());
    let db = await open(factory, 1, (d) => {
      d.createObjectStore("plain");
      d.createObjectStore("gone");
      d.createObjectStore("indexed").createIndex("tag", "tag");
      d.createObjectStore("cleared");
    });
    let tx = db.transaction(["plain", "gone", "indexed", "cleared"], "readwrite");
    for (let i = 0; i < 10; i++) tx.objectStore("plain").put({ i, bytes: new Uint8Array([i, 255]) }, i);
    tx.objectStore("plain").put("binary", new Uint8Array([1, 2, 3]));
    tx.objectStore("plain").put("array", ["a", 1]);
    tx.objectStore("gone").put(1, "k");
    tx.objectStore("indexed").put({ tag: "x" }, "a");
    tx.objectStore("indexed").put({ tag: "y" }, "b");
    tx.objectStore("cleared").put(1, "old");
    await done(tx);
    tx = db.transaction(["plain", "cleared"], "readwrite");
    tx.objectStore("plain").delete((globalThis as any).IDBKeyRange.bound(2, 5));
    tx.objectStore("cleared").clear();
    tx.objectStore("cleared").put(2, "new");
    await done(tx);
    tx = db.transaction(["plain"], "readwrite");
    tx.objectStore("plain").put("never", 100);
    tx.objectStore("plain").delete(0);
    tx.abort();
    await assert.rejects(done(tx));
    db.close();
    db = await open(factory, 2, (d) => d.deleteObjectStore("gone"));
    db.close();
    await mirror.settled();
    const before = await dump(factory, 2);
    await mirror.close();

    const again = await newIndexedDb();
    const reloaded = await IdbMirror.load(kv, "t", again, silentLogger());
    const after = await dump(again, 2);
    assert.deepEqual(after, before);
    assert.deepEqual(
      (after.plain as { keys: unknown[] }).keys.length,
      8,
      "0,1,6..9, the binary and the array key",
    );
    assert.deepEqual(after.byTag, ["a"]);
    assert.deepEqual((after.cleared as { keys: unknown[] }).keys, ["new"]);
    assert.equal(after.gone, undefined);
    await reloaded.close();
    await store.close();
  });
});
