// The invariants stated at the top of src/inbox/lanes.ts, one test each.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TransactionContext } from "../../../src/appservice/handlers.js";
import { AppserviceMetrics } from "../../../src/appservice/metrics.js";
import { silentLogger } from "../../../src/common/logger.js";
import { DeadLetters, type DeadLetter } from "../../../src/inbox/dead-letters.js";
import { PermanentError } from "../../../src/inbox/errors.js";
import { Lanes } from "../../../src/inbox/lanes.js";
import { inboxRetryPolicy } from "../../../src/inbox/retry-policy.js";
import type { LaneWork } from "../../../src/inbox/work.js";
import { deferred, MapStore } from "../../support/appservice/harness.js";

class Work implements LaneWork {
  attempts = 0;
  firstTriedAt = 0;
  finished: Array<"handled" | "dead"> = [];
  ctx: TransactionContext | undefined;
  constructor(
    readonly lane: string,
    readonly id: string,
    readonly body: (ctx: TransactionContext) => Promise<void> | void = () => undefined,
    readonly onFinish: () => Promise<void> = () => Promise.resolve(),
  ) {}
  readonly txnId = "t";
  get item() {
    return {
      kind: "event" as const,
      event: {
        event_id: this.id,
        room_id: this.lane,
        type: "m.room.message",
        sender: "@u:x",
        origin_server_ts: 0,
        content: {},
      },
    };
  }
  run(ctx: TransactionContext) {
    this.ctx = ctx;
    return this.body(ctx);
  }
  async finish(outcome: "handled" | "dead") {
    await this.onFinish();
    this.finished.push(outcome);
  }
}

function lanes(
  o: {
    concurrency?: number;
    timeoutMs?: number;
    firstDelayMs?: number;
    onDeadLetter?: (l: DeadLetter) => Promise<void>;
  } = {},
) {
  const letters = new DeadLetters(new MapStore());
  const l = new Lanes({
    logger: silentLogger(),
    metrics: new AppserviceMetrics(
      () => 0,
      () => 0,
    ),
    concurrency: o.concurrency ?? 4,
    handlerTimeoutMs: o.timeoutMs ?? 5_000,
    retry: inboxRetryPolicy({
      firstDelayMs: o.firstDelayMs ?? 5,
      maxDelayMs: Math.max(10, o.firstDelayMs ?? 0),
      maxAttempts: 3,
      unexpectedAttempts: 2,
    }),
    deadLetters: letters,
    ...(o.onDeadLetter ? { onDeadLetter: o.onDeadLetter } : {}),
  });
  return { l, letters };
}

describe("Lanes", () => {
  it("1. runs a lane's items one at a time in order, lanes in parallel", async () => {
    const { l } = lanes();
    const log: string[] = [];
    const running = new Set<string>();
    let parallel = false;
    const step = (lane: string, id: string) =>
      new Work(lane, id, async () => {
        assert.ok(!running.has(lane), `two items of ${lane} at once`);
        running.add(lane);
        if (running.size > 1) parallel = true;
        await new Promise((r) => setTimeout(r, 2));
        running.delete(lane);
        log.push(id);
      });
    for (let i = 0; i < 5; i++) for (const lane of ["a", "b"]) l.enqueue(step(lane, `${lane}${i}`));
    await l.drain();
    assert.deepEqual(
      log.filter((x) => x.startsWith("a")),
      ["a0", "a1", "a2", "a3", "a4"],
    );
    assert.deepEqual(
      log.filter((x) => x.startsWith("b")),
      ["b0", "b1", "b2", "b3", "b4"],
    );
    assert.ok(parallel);
  });

  it("2. at most `concurrency` calls at once; a lane waiting for a retry holds no slot", async () => {
    const { l } = lanes({ concurrency: 1 });
    let failed = false;
    const order: string[] = [];
    l.enqueue(
      new Work("a", "a0", () => {
        order.push("a0");
        if (!failed) {
          failed = true;
          throw new Error("once");
        }
      }),
    );
    l.enqueue(new Work("b", "b0", () => void order.push("b0")));
    await l.drain();
    assert.deepEqual(order, ["a0", "b0", "a0"], "b ran while a waited for its retry");
  });

  it("3. the next item starts only after the previous call settled or timed out", async () => {
    const { l } = lanes({ timeoutMs: 30, firstDelayMs: 60_000 });
    const hang = deferred();
    const order: string[] = [];
    let signal: AbortSignal | undefined;
    const first = new Work("a", "a0", async (ctx) => {
      signal = ctx.signal;
      order.push("a0 start");
      await hang.promise;
    });
    l.enqueue(first);
    l.enqueue(new Work("a", "a1", () => void order.push("a1")));
    await new Promise((r) => setTimeout(r, 15));
    assert.deepEqual(order, ["a0 start"]);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(signal?.aborted, true, "the timed-out call's signal aborted");
    hang.resolve();
    await l.drain();
    assert.deepEqual(first.finished, ["handled"], "its late success counted");
    assert.equal(first.attempts, 1, "it was not run twice");
    assert.equal(order.at(-1), "a1");
  });

  it("4. retries with backoff, then dead-letters (stored before the hook) and moves on", async () => {
    const told: DeadLetter[] = [];
    const { l, letters } = lanes({
      onDeadLetter: async (letter) => {
        assert.ok(await letters.get(letter.id), "stored before the sender is told");
        told.push(letter);
      },
    });
    const bad = new Work("a", "$bad", () => {
      throw new Error("bug");
    });
    const next = new Work("a", "$next");
    l.enqueue(bad);
    l.enqueue(next);
    await l.drain();
    assert.equal(bad.attempts, 2, "unexpectedAttempts");
    assert.deepEqual(bad.finished, ["dead"]);
    assert.deepEqual(next.finished, ["handled"]);
    assert.equal(told[0]?.id, "$bad");
    assert.equal((await letters.list()).length, 1);
  });

  it("5. the lane's next item waits until the previous one is recorded", async () => {
    const { l } = lanes();
    const recorded = deferred();
    const order: string[] = [];
    l.enqueue(
      new Work(
        "a",
        "a0",
        () => void order.push("a0 run"),
        () => recorded.promise.then(() => void order.push("a0 recorded")),
      ),
    );
    l.enqueue(new Work("a", "a1", () => void order.push("a1 run")));
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(order, ["a0 run"]);
    recorded.resolve();
    await l.drain();
    assert.deepEqual(order, ["a0 run", "a0 recorded", "a1 run"]);
  });

  it("6. a record that fails is written again; a hook that throws is only logged", async () => {
    const { l } = lanes({ onDeadLetter: () => Promise.reject(new Error("homeserver down")) });
    let fails = 1;
    const flaky = new Work("a", "a0", undefined, () =>
      fails-- > 0 ? Promise.reject(new Error("store down")) : Promise.resolve(),
    );
    const dead = new Work("b", "b0", () => Promise.reject(new PermanentError("no")));
    l.enqueue(flaky);
    l.enqueue(dead);
    await l.drain();
    assert.deepEqual(flaky.finished, ["handled"]);
    assert.deepEqual(dead.finished, ["dead"]);
  });

  it("close: nothing new starts, waits end, running calls are aborted; what was left stays unfinished", async () => {
    const { l } = lanes();
    const a0 = new Work(
      "a",
      "a0",
      (ctx) =>
        new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(new Error("stopped")))),
    );
    const a1 = new Work("a", "a1");
    l.enqueue(a0);
    l.enqueue(a1);
    await new Promise((r) => setTimeout(r, 5));
    await l.close();
    assert.deepEqual(a0.finished, []);
    assert.deepEqual(a1.finished, [], "left for the next start");
    assert.equal(a1.attempts, 0);
    l.enqueue(new Work("c", "c0"));
    await l.drain();
  });
});
