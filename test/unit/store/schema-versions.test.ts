import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { silentLogger } from "../../../src/common/logger.js";
import {
  migrateStore,
  STORE_AREAS,
  StoreSchemaError,
  type StoreArea,
} from "../../../src/store/schema-versions.js";
import { MapStore } from "../../support/appservice/harness.js";

const log = silentLogger();

describe("store schema versions", () => {
  it("a fresh store gets every area's version; a second start runs nothing", async () => {
    const store = new MapStore();
    await migrateStore(store, log);
    for (const area of STORE_AREAS)
      assert.equal(store.data.get(`schema:${area.name}`), area.version, area.name);
    assert.deepEqual(await migrateStore(store, log), []);
  });

  it("runs the migrations an area needs, in order, then writes its version", async () => {
    const store = new MapStore();
    const ran: string[] = [];
    const area: StoreArea = {
      name: "things",
      namespaces: ["things"],
      version: 3,
      migrations: [1, 2, 3].map((to) => ({
        to,
        describe: `to ${to}`,
        run: () => {
          ran.push(`to ${to} (version then ${String(store.data.get("schema:things"))})`);
          return Promise.resolve();
        },
      })),
    };
    await store.namespace("schema").set("things", 1);
    assert.deepEqual(await migrateStore(store, log, [area]), ["things 2: to 2", "things 3: to 3"]);
    assert.deepEqual(ran, ["to 2 (version then 1)", "to 3 (version then 1)"]);
    assert.equal(store.data.get("schema:things"), 3);
  });

  it("refuses a store written by a newer bridgekit, naming the area and both versions, and changes nothing", async () => {
    const store = new MapStore();
    await store.namespace("schema").set("inbox", 99);
    const before = new Map(store.data);
    for (const checkOnly of [true, false]) {
      await assert.rejects(migrateStore(store, log, STORE_AREAS, { checkOnly }), (err: unknown) => {
        assert.ok(err instanceof StoreSchemaError);
        assert.match(
          err.message,
          /^store map:\/\/: its inbox data was written by a newer bridgekit \(schema version 99; this one knows up to 1\)/,
        );
        return true;
      });
    }
    assert.deepEqual(store.data, before);
  });

  it("refuses a version that is not a number", async () => {
    const store = new MapStore();
    await store.namespace("schema").set("portals", "two");
    await assert.rejects(migrateStore(store, log), /schema\.portals is "two", not a version number/);
  });

  it("the first inbox migration deletes the old transaction journal, and nothing else", async () => {
    const store = new MapStore();
    const journal = store.namespace<unknown>("journal");
    await journal.set("head", 10_560);
    // A retention larger than the default: 10 500 slots, filled in order as a ring fills.
    const slots = Array.from({ length: 10_500 }, (_, slot) => slot);
    await journal.setMany(
      slots.map((slot) => [`r:${slot}`, slot === 7 ? "t:legacydigest" : `digest${slot}`]),
    );
    await journal.setMany(slots.map((slot) => [`s:${slot}`, `{"id":"t${slot}"}`]));
    await journal.set("t:legacydigest", { id: "old" }); // the earliest layout's record
    await store.namespace("ghosts").set("alice", { remoteId: "alice" });
    const ran = await migrateStore(store, log);
    assert.deepEqual(ran, ["inbox 1: delete the transaction journal (replaced by the inbox)"]);
    assert.deepEqual(store.keys("journal"), []);
    assert.deepEqual(store.keys("ghosts"), ["alice"]);
  });
});
