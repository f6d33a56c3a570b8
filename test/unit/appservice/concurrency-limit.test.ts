import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConcurrencyLimit } from "../../../src/appservice/concurrency-limit.js";
import { deferred } from "../../support/appservice/harness.js";

describe("ConcurrencyLimit", () => {
  it("runs at most max calls at once, the rest in arrival order, and frees slots on failure", async () => {
    const limit = new ConcurrencyLimit(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const gates = Array.from({ length: 6 }, () => deferred());
    const calls = gates.map((gate, i) =>
      limit.run(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await gate.promise;
        running--;
        if (i === 1) throw new Error("call 1 fails");
        return i;
      }),
    );
    const settled = Promise.allSettled(calls);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1]);
    assert.equal(limit.size, 6);
    for (const gate of gates) {
      gate.resolve();
      await new Promise((r) => setImmediate(r));
    }
    const results = await settled;
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
    assert.equal(peak, 2);
    assert.equal(results[1]!.status, "rejected");
    assert.deepEqual(
      results.filter((r) => r.status === "fulfilled").map((r) => r.value),
      [0, 2, 3, 4, 5],
    );
    assert.equal(limit.size, 0);
  });

  it("stays correct over many waiters (its queue compacts)", async () => {
    const limit = new ConcurrencyLimit(3);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 5000 }, (_, i) =>
        limit.run(async () => {
          running++;
          peak = Math.max(peak, running);
          order.push(i);
          await Promise.resolve();
          running--;
        }),
      ),
    );
    assert.equal(peak, 3);
    assert.deepEqual(
      order,
      Array.from({ length: 5000 }, (_, i) => i),
    );
    assert.equal(limit.size, 0);
  });

  it("acquire takes a free slot synchronously and queues when full; release hands the slot on", async () => {
    const limit = new ConcurrencyLimit(1);
    assert.equal(limit.acquire(), undefined, "a free slot is taken with no promise");
    const waiting = limit.acquire();
    assert.ok(waiting instanceof Promise, "a full limit gives a promise");
    let granted = false;
    void waiting.then(() => (granted = true));
    await Promise.resolve();
    assert.equal(granted, false);
    assert.equal(limit.size, 2);
    limit.release();
    await waiting;
    assert.equal(granted, true);
    assert.equal(limit.size, 1, "the slot passed to the waiter, not back to the pool");
    limit.release();
    assert.equal(limit.size, 0);
    assert.equal(limit.acquire(), undefined);
  });
});
