// The writer lease on PostgreSQL and Redis (memory and sqlite run in the unit suite), and a
// holder that stops renewing (a paused or dead process) losing it to a standby.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { acquireWriterLease, fencedStore } from "../../src/store/lease.js";
import { BACKENDS, openTestStore } from "./backends.js";
import { leaseCases } from "./lease-cases.js";

for (const backend of BACKENDS.filter((b) => b.name === "postgres" || b.name === "redis")) {
  leaseCases(backend);

  describe(`writer lease on ${backend.name}: a holder that stops renewing`, () => {
    it("loses the lease to a standby within the ttl, and its fenced writes are refused from its own deadline", async () => {
      const store = await openTestStore(backend, { fresh: true });
      const prefix = `lease-${randomBytes(4).toString("hex")}`;
      const ttlMs = 1_200;
      const active = await acquireWriterLease(backend.url, store, { prefix, ttlMs, holder: "paused" });
      // Simulate a process paused or cut off: its renewals stop reaching the backend.
      const lost: string[] = [];
      active.onLost((reason) => lost.push(reason));
      (active as unknown as { timer: NodeJS.Timeout }).timer.close();
      const fenced = fencedStore(store, () => active).namespace<string>("paused");
      const started = performance.now();
      const standby = await acquireWriterLease(backend.url, store, {
        prefix,
        ttlMs,
        standby: true,
        holder: "standby",
      });
      const tookMs = performance.now() - started;
      assert.ok(tookMs < ttlMs * 2, `took over in ${Math.round(tookMs)} ms`);
      assert.ok(standby.token > active.token);
      assert.equal(active.valid(), false, "the old holder's own deadline has passed");
      await assert.rejects(fenced.set("late", "write"), /does not hold the store's writer lease/);
      await standby.release();
      await active.release().catch(() => undefined);
      await store.close();
    });
  });
}
