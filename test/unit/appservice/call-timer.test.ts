import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CallTimer, type TimedTask } from "../../../src/appservice/call-timer.js";
import { HandlerTimeoutError } from "../../../src/appservice/errors.js";
import type { TransactionContext } from "../../../src/appservice/handlers.js";
import { Registry } from "prom-client";
import { LabelledHistogram } from "../../../src/appservice/lean-histogram.js";
import { deferred } from "../../support/appservice/harness.js";
import { silentLogger } from "../../../src/common/logger.js";

class Task implements TimedTask {
  ctx: TransactionContext | undefined;
  constructor(
    readonly txnId: string,
    private readonly body: (ctx: TransactionContext) => Promise<void> | void,
  ) {}
  log() {
    return silentLogger();
  }
  run(ctx: TransactionContext) {
    this.ctx = ctx;
    return this.body(ctx);
  }
}

function timer(ms: number) {
  const late: Array<{ task: Task; name: string; err?: Error }> = [];
  const settled: Array<{ task: Task; ms: number }> = [];
  const t = new CallTimer<Task>(ms, {
    settled: (task, _name, elapsed) => settled.push({ task, ms: elapsed }),
    lateSuccess: (task, name) => late.push({ task, name }),
    lateFailure: (task, name, err) => late.push({ task, name, err }),
  });
  return { t, late, settled };
}

describe("CallTimer", () => {
  it("passes success, failure, a synchronous throw and a synchronous return through", async () => {
    const { t, settled } = timer(1000);
    await t.run("h", new Task("t1", () => Promise.resolve()));
    await assert.rejects(t.run("h", new Task("t1", () => Promise.reject(new Error("bad")))), /bad/);
    await assert.rejects(
      t.run(
        "h",
        new Task("t1", () => {
          throw new Error("sync");
        }),
      ),
      /sync/,
    );
    const task = new Task("t2", () => undefined);
    await t.run("h", task);
    assert.equal(task.ctx?.transactionId, "t2", "the context names the transaction");
    assert.equal(settled.length, 4, "settled once per call, whichever way it ended");
  });

  it("call(): a synchronous outcome is reported synchronously, an asynchronous one once, after settled", async () => {
    const { t, settled } = timer(1000);
    const outcomes: Array<string | undefined> = [];
    t.call("h", new Task("t", () => undefined), (err) => outcomes.push(err?.message));
    t.call(
      "h",
      new Task("t", () => {
        throw new Error("sync");
      }),
      (err) => outcomes.push(err?.message),
    );
    assert.deepEqual(outcomes, [undefined, "sync"], "both reported before call() returned");
    const gate = deferred();
    let settledBefore = -1;
    const done = deferred();
    t.call("h", new Task("t", () => gate.promise), (err) => {
      settledBefore = settled.length;
      outcomes.push(err?.message);
      done.resolve();
    });
    assert.equal(outcomes.length, 2, "an asynchronous call is not reported before it settles");
    gate.resolve();
    await done.promise;
    assert.deepEqual(outcomes, [undefined, "sync", undefined]);
    assert.equal(settledBefore, 3, "`settled` ran before the outcome was reported");
  });

  it("reports `settled` before the caller resumes", async () => {
    const { t, settled } = timer(1000);
    const task = new Task("t", () => new Promise((r) => setTimeout(r, 5)));
    await t.run("h", task);
    assert.equal(settled.length, 1);
    assert.equal(settled[0]!.task, task);
    assert.ok(settled[0]!.ms >= 4, `the call's duration (${settled[0]!.ms} ms)`);
  });

  it("times out a hanging call: rejects, aborts its signal, reports the late success once", async () => {
    const { t, late, settled } = timer(30);
    const release = deferred();
    let signal: AbortSignal | undefined;
    const task = new Task("slow-txn", (ctx) => {
      signal = ctx.signal;
      return release.promise;
    });
    const started = performance.now();
    await assert.rejects(
      t.run("onEvent", task),
      (err: unknown) =>
        err instanceof HandlerTimeoutError && /onEvent did not settle within 30 ms/.test(err.message),
    );
    const waited = performance.now() - started;
    assert.ok(waited >= 29, `not before its time (${waited} ms)`);
    assert.equal(signal?.aborted, true);
    assert.equal(late.length, 0);
    assert.equal(settled.length, 1, "settled at the timeout");
    release.resolve();
    await new Promise((r) => setImmediate(r));
    assert.equal(late.length, 1);
    assert.equal(late[0]!.task, task);
    assert.equal(late[0]!.err, undefined);
    assert.equal(settled.length, 1, "not settled again by the late outcome");
  });

  it("a late failure goes to `failed`, never to an unhandled rejection; the signal read late is aborted", async () => {
    let unhandled = 0;
    const onUnhandled = () => unhandled++;
    process.on("unhandledRejection", onUnhandled);
    try {
      const { t, late } = timer(10);
      const gate = deferred();
      const task = new Task("x", () => gate.promise.then(() => Promise.reject(new Error("late"))));
      await assert.rejects(t.run("h", task), HandlerTimeoutError);
      assert.equal(task.ctx?.signal.aborted, true, "a signal first read after the timeout is aborted");
      gate.resolve();
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(late.length, 1);
      assert.match(String(late[0]!.err), /late/);
      assert.equal(unhandled, 0);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("calls that finish in time never time out, and the ticker stops when none run", async () => {
    // A limit far above the calls' 1 ms: on a loaded machine a 1 ms timer can fire 20+ ms late.
    // The ticker runs every tenth of it (50 ms) and stops at its first tick with no call running.
    const { t, late } = timer(500);
    for (let i = 0; i < 50; i++) await t.run("h", new Task("t", () => new Promise((r) => setTimeout(r, 1))));
    assert.equal(late.length, 0);
    // No ticker left behind: the process could exit (checked through the handle list, for up
    // to 3 s: a loaded machine may run the ticker's last tick late).
    const timers = () =>
      (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo();
    for (let waited = 0; waited < 3_000 && timers().includes("Timeout"); waited += 20)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(!timers().includes("Timeout"), `no timer left: ${timers().join(", ")}`);
    assert.equal(late.length, 0);
  });
});

describe("LabelledHistogram", () => {
  it("exposes buckets, sum and count per label in Prometheus text, like prom-client's own", async () => {
    const registry = new Registry();
    const h = new LabelledHistogram("x_seconds", "Time x took", "handler", [0.1, 1], registry);
    const a = h.labels("a");
    a.observe(0.05);
    a.observe(0.5);
    a.observe(5);
    h.labels("b").observe(1);
    const stop = h.startTimer("c");
    stop();
    const text = await registry.metrics();
    assert.match(text, /# TYPE x_seconds histogram/);
    assert.match(text, /x_seconds_bucket\{le="0.1",handler="a"\} 1\n/);
    assert.match(text, /x_seconds_bucket\{le="1",handler="a"\} 2\n/);
    assert.match(text, /x_seconds_bucket\{le="\+Inf",handler="a"\} 3\n/);
    assert.match(text, /x_seconds_sum\{handler="a"\} 5.55\n/);
    assert.match(text, /x_seconds_count\{handler="a"\} 3\n/);
    assert.match(text, /x_seconds_bucket\{le="1",handler="b"\} 1\n/, "a value on a bound counts in it");
    assert.match(text, /x_seconds_count\{handler="c"\} 1/);
    assert.equal(h.labels("a"), a, "one series per label value");
  });
});
