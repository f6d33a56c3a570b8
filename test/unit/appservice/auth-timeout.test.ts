import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TokenChecker } from "../../../src/appservice/auth.js";
import { HandlerTimeoutError, MatrixHttpError } from "../../../src/appservice/errors.js";
import { withTimeout } from "../../../src/appservice/timeout.js";
import { deferred, waitFor } from "../../support/appservice/harness.js";

const status = (fn: () => void): number | "ok" => {
  try {
    fn();
    return "ok";
  } catch (err) {
    assert.ok(err instanceof MatrixHttpError);
    assert.doesNotMatch(err.message, /right-token|wrong/);
    return err.status;
  }
};

describe("TokenChecker", () => {
  const checker = new TokenChecker("right-token");
  it("401 without credentials, 403 with wrong or disagreeing ones", () => {
    assert.equal(
      status(() => checker.check({ authorization: undefined, queryTokens: [] })),
      401,
    );
    assert.equal(
      status(() => checker.check({ authorization: "Bearer right-token", queryTokens: [] })),
      "ok",
    );
    assert.equal(
      status(() => checker.check({ authorization: "bearer right-token", queryTokens: [] })),
      "ok",
    );
    assert.equal(
      status(() => checker.check({ authorization: undefined, queryTokens: ["right-token"] })),
      "ok",
    );
    assert.equal(
      status(() => checker.check({ authorization: "Bearer right-token", queryTokens: ["right-token"] })),
      "ok",
    );
    assert.equal(
      status(() => checker.check({ authorization: "Bearer wrong", queryTokens: [] })),
      403,
    );
    assert.equal(
      status(() => checker.check({ authorization: "Bearer right-token", queryTokens: ["wrong"] })),
      403,
    );
    assert.equal(
      status(() => checker.check({ authorization: undefined, queryTokens: ["right-token", "wrong"] })),
      403,
    );
    assert.equal(
      status(() => checker.check({ authorization: undefined, queryTokens: [""] })),
      403,
    );
    assert.equal(
      status(() => checker.check({ authorization: "Bearer right-token-longer", queryTokens: [] })),
      403,
    );
    assert.equal(
      status(() => checker.check({ authorization: "Token right-token", queryTokens: [] })),
      401,
    );
  });
  it("refuses an empty hs_token", () => {
    assert.throws(() => new TokenChecker(""), /hs_token/);
  });
});

describe("withTimeout", () => {
  it("passes a result or an error through", async () => {
    assert.equal(await withTimeout("h", 1000, () => Promise.resolve(5)), 5);
    await assert.rejects(
      withTimeout("h", 1000, () => Promise.reject(new Error("bad"))),
      /bad/,
    );
    await assert.rejects(
      withTimeout("h", 1000, () => {
        throw new Error("sync");
      }),
      /sync/,
    );
  });

  it("rejects at the timeout, aborts the signal, and reports the late outcome only to its callbacks", async () => {
    const release = deferred<number>();
    let signal: AbortSignal | undefined;
    let late: number | undefined;
    const p = withTimeout(
      "slow",
      20,
      (s) => {
        signal = s(); // asked for before the timeout: the same signal is aborted later
        return release.promise;
      },
      { onLateSuccess: (v) => (late = v) },
    );
    await assert.rejects(
      p,
      (err: unknown) =>
        err instanceof HandlerTimeoutError && /slow did not settle within 20 ms/.test(err.message),
    );
    assert.equal(signal?.aborted, true);
    release.resolve(7);
    await new Promise((r) => setImmediate(r));
    assert.equal(late, 7);
    let askedLate: (() => AbortSignal) | undefined;
    const never = withTimeout("lazy", 20, (s) => {
      askedLate = s; // asked for only after the timeout: already aborted
      return new Promise<number>(() => undefined);
    });
    await assert.rejects(never, HandlerTimeoutError);
    assert.equal(askedLate?.().aborted, true);
  });

  it("a late rejection goes to onLateFailure, never to an unhandled rejection", async () => {
    let unhandled = 0;
    const onUnhandled = () => unhandled++;
    process.on("unhandledRejection", onUnhandled);
    try {
      let reject!: (e: Error) => void;
      const call = new Promise<void>((_, r) => (reject = r));
      let lateError: unknown;
      await assert.rejects(
        withTimeout("x", 10, () => call, { onLateFailure: (e) => (lateError = e) }),
        HandlerTimeoutError,
      );
      reject(new Error("late"));
      await waitFor(() => lateError !== undefined, "the late failure");
      await new Promise((r) => setImmediate(r));
      assert.match(String(lateError), /late/);
      assert.equal(unhandled, 0);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
