import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { backoffDelay, rateLimitDelay, resolveRetryPolicy } from "../../../src/client/index.js";

describe("retry policy", () => {
  it("backs off exponentially, with jitter, never beyond maxDelayMs", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 120_000 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (retry, base, max, r) => {
          const policy = resolveRetryPolicy({ baseDelayMs: base, maxDelayMs: max });
          const d = backoffDelay(retry, policy, () => r);
          const capped = Math.min(max, base * 2 ** retry);
          return d >= 0 && d <= max && d >= capped / 2 - 1e-9 && d <= capped + 1e-9;
        },
      ),
    );
    const p = resolveRetryPolicy({ baseDelayMs: 100, maxDelayMs: 10_000 });
    assert.deepEqual(
      [0, 1, 2, 3].map((n) => backoffDelay(n, p, () => 0)),
      [50, 100, 200, 400],
      "the lower jitter bound doubles each retry",
    );
    assert.equal(
      backoffDelay(50, p, () => 0.999),
      10_000 / 2 + 0.999 * 5_000,
    );
  });

  it("reads retry_after_ms first, then Retry-After seconds or date", () => {
    assert.equal(rateLimitDelay({ retry_after_ms: 1500 }, "9"), 1500);
    assert.equal(rateLimitDelay({ errcode: "M_LIMIT_EXCEEDED" }, "2"), 2000);
    assert.equal(rateLimitDelay({}, "0.5"), 500);
    const now = Date.parse("2025-01-01T00:00:00Z");
    assert.equal(rateLimitDelay(undefined, "Wed, 01 Jan 2025 00:00:03 GMT", now), 3000);
    assert.equal(
      rateLimitDelay(undefined, "Tue, 31 Dec 2024 00:00:00 GMT", now),
      0,
      "a date in the past waits 0",
    );
    assert.equal(rateLimitDelay({ retry_after_ms: -5 }, null), undefined);
    assert.equal(rateLimitDelay({ retry_after_ms: "10" }, "soon"), undefined);
    assert.equal(rateLimitDelay(null, null), undefined);
  });

  it("rejects nonsense policies naming the key", () => {
    assert.throws(
      () => resolveRetryPolicy({ maxAttempts: 1.5 }),
      /retry\.maxAttempts must be an integer >= 1, got 1\.5/,
    );
    assert.throws(() => resolveRetryPolicy({ maxDelayMs: -1 }), /retry\.maxDelayMs/);
    assert.throws(() => resolveRetryPolicy({ baseDelayMs: Number.NaN }), /retry\.baseDelayMs/);
    assert.equal(resolveRetryPolicy({ maxAttempts: 1 }).maxAttempts, 1);
  });
});
