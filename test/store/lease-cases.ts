// The writer lease on a real backend: a second holder is refused (or, as a standby, waits and
// takes over once the first releases or stops renewing), tokens increase, and the fenced
// store refuses writes once the lease is no longer valid.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { acquireWriterLease, fencedStore, LeaseHeldError, type WriterLease } from "../../src/store/lease.js";
import type { Store } from "../../src/store/index.js";
import { openTestStore, type Backend } from "./backends.js";

export function leaseCases(backend: Backend): void {
  describe(`writer lease on ${backend.name}`, () => {
    let store: Store;
    let prefix: string;
    const held: WriterLease[] = [];
    before(async () => {
      store = await openTestStore(backend, { fresh: true });
      prefix = `lease-${randomBytes(4).toString("hex")}`;
    });
    after(async () => {
      for (const lease of held) await lease.release().catch(() => undefined);
      await store?.close();
    });
    const url = () =>
      backend.name === "sqlite" ? `sqlite://${store.description.replace(/^sqlite:\/\//, "")}` : backend.url;
    const take = async (
      o: { standby?: boolean; ttlMs?: number; holder?: string; signal?: AbortSignal } = {},
    ) => {
      const lease = await acquireWriterLease(url(), store, { prefix, ttlMs: 900, ...o });
      held.push(lease);
      return lease;
    };

    it("one holder at a time: a second is refused with a message naming the store; after release it gets a higher token", async () => {
      const first = await take({ holder: "first" });
      assert.ok(first.valid());
      await assert.rejects(take({ holder: "second" }), (err: unknown) => {
        assert.ok(err instanceof LeaseHeldError);
        assert.match(err.message, /is in use by another bridge process/);
        assert.match(err.message, /lease\.standby: true/);
        return true;
      });
      await first.release();
      assert.equal(first.valid(), false, "a released lease is not valid");
      const second = await take({ holder: "second" });
      assert.ok(second.token > first.token, `token ${second.token} > ${first.token}`);
      await second.release();
    });

    it("a standby waits, and takes over once the holder releases", async () => {
      const active = await take({ holder: "active" });
      let tookOver = false;
      const standby = take({ holder: "standby", standby: true }).then((l) => {
        tookOver = true;
        return l;
      });
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(tookOver, false, "still waiting while the active one holds it");
      await active.release();
      const next = await standby;
      assert.ok(next.valid());
      assert.ok(next.token > active.token);
      await next.release();
    });

    it("a standby's wait can be aborted", async () => {
      const active = await take({ holder: "busy" });
      const controller = new AbortController();
      const waiting = take({ holder: "impatient", standby: true, signal: controller.signal });
      setTimeout(() => controller.abort(new Error("shutting down")), 200);
      await assert.rejects(waiting, /shutting down/);
      await active.release();
    });

    it("the fenced store writes while the lease is valid and refuses every write after", async () => {
      const lease = await take({ holder: "fenced" });
      const fenced = fencedStore(store, () => lease).namespace<string>("fence-test");
      await fenced.set("a", "1");
      await fenced.setMany([["b", "2"]]);
      await lease.release();
      await assert.rejects(fenced.set("c", "3"), /does not hold the store's writer lease/);
      await assert.rejects(fenced.setMany([["c", "3"]]), /does not hold the store's writer lease/);
      await assert.rejects(fenced.delete("a"), /does not hold/);
      assert.equal(await fenced.get("a"), "1", "reads pass");
      assert.equal(await fenced.get("c"), undefined, "nothing written after the lease went");
    });
  });
}
