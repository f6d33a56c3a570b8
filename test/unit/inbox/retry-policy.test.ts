import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HandlerTimeoutError } from "../../../src/appservice/errors.js";
import {
  DEFAULT_INBOX_RETRY,
  failureKind,
  inboxRetryPolicy,
  nextTry,
  PermanentError,
  RetryableError,
  UnsupportedError,
} from "../../../src/inbox/index.js";

const policy = inboxRetryPolicy({ firstDelayMs: 100, maxDelayMs: 1_000, maxAttempts: 6, maxAgeMs: 60_000 });

describe("inbox retry policy", () => {
  it("classifies each error class", () => {
    assert.equal(failureKind(new PermanentError("no")), "permanent");
    assert.equal(failureKind(new UnsupportedError("no edits")), "permanent");
    assert.equal(failureKind(new RetryableError("down")), "retryable");
    assert.equal(failureKind(new HandlerTimeoutError("onEvent", 5)), "retryable");
    assert.equal(failureKind(new TypeError("bug")), "unexpected");
    assert.equal(failureKind("a string"), "unexpected");
  });

  it("backs off exponentially up to maxDelayMs", () => {
    const delays = [1, 2, 3, 4, 5].map((attempts) => {
      const next = nextTry(policy, new RetryableError("down"), attempts, 0, 0);
      assert.ok(next.retry);
      return next.delayMs;
    });
    assert.deepEqual(delays, [100, 200, 400, 800, 1_000]);
  });

  it("gives up after maxAttempts for retryable errors and unexpectedAttempts for the rest", () => {
    assert.deepEqual(nextTry(policy, new RetryableError("down"), 6, 0, 0), {
      retry: false,
      reason: "exhausted",
    });
    assert.ok(nextTry(policy, new TypeError("bug"), 2, 0, 0).retry);
    assert.deepEqual(nextTry(policy, new TypeError("bug"), 3, 0, 0), { retry: false, reason: "exhausted" });
  });

  it("gives up at once on a PermanentError", () => {
    assert.deepEqual(nextTry(policy, new PermanentError("never"), 1, 0, 0), {
      retry: false,
      reason: "permanent",
    });
  });

  it("gives up when the next try would come after maxAgeMs", () => {
    assert.ok(nextTry(policy, new RetryableError("down"), 1, 0, 59_000).retry);
    assert.deepEqual(nextTry(policy, new RetryableError("down"), 1, 0, 59_950), {
      retry: false,
      reason: "exhausted",
    });
  });

  it("waits at least the error's retryAfterMs", () => {
    const next = nextTry(policy, new RetryableError("slow down", { retryAfterMs: 5_000 }), 1, 0, 0);
    assert.deepEqual(next, { retry: true, delayMs: 5_000 });
  });

  it("has documented defaults and refuses bad values naming the field", () => {
    assert.deepEqual(inboxRetryPolicy(), DEFAULT_INBOX_RETRY);
    assert.throws(
      () => inboxRetryPolicy({ maxAttempts: 0 }),
      /retry\.maxAttempts must be a positive integer, got 0/,
    );
    assert.throws(
      () => inboxRetryPolicy({ firstDelayMs: -1 }),
      /retry\.firstDelayMs must be a non-negative integer/,
    );
  });

  it("keeps the user's message on errors", () => {
    assert.equal(new PermanentError("too big for IRC").userMessage, "too big for IRC");
    const cause = new Error("ECONNRESET");
    const err = new RetryableError("down", { cause, userMessage: "the network is down", retryAfterMs: 10 });
    assert.equal(err.cause, cause);
    assert.equal(err.userMessage, "the network is down");
    assert.equal(err.name, "RetryableError");
    assert.equal(new UnsupportedError("x").name, "UnsupportedError");
  });
});
