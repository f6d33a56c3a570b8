/**
 * The lanes: how recorded items reach their handlers.
 *
 * Invariants (each one tested in test/unit/inbox/lanes.test.ts):
 * 1. One lane per room (and one per kind of data without a room). A lane runs one item at a
 *    time, in the order items were enqueued; lanes run in parallel.
 * 2. At most `concurrency` handler calls run at once, across lanes. Only the call holds a
 *    slot: a lane waiting for a retry or for its record holds none.
 * 3. An item's next try, or the lane's next item, starts only after the previous call
 *    settled or timed out.
 * 4. A failed item is retried with backoff (InboxRetryPolicy) while its lane waits; other lanes
 *    go on. `retryNow()` (the remote network is back) ends every lane's wait at once.
 * 5. An item is over when handled or dead-lettered; the lane's next item starts only once
 *    that is durably recorded (a dead letter is stored before the item is marked). So a
 *    crash hands at most the one item in progress per lane to the handler again.
 * 6. Nothing thrown by a handler or a hook escapes: every failure is logged, counted, and
 *    decided on (retry or dead letter); a failed record is written again until it lands.
 */
import type { Logger } from "../common/logger.js";
import type { TransactionContext } from "../appservice/handlers.js";
import type { AppserviceMetrics } from "../appservice/metrics.js";
import { CallTimer, type TimedTask } from "../appservice/call-timer.js";
import { ConcurrencyLimit } from "../appservice/concurrency-limit.js";
import type { DeadLetter, DeadLetterReason, DeadLetters } from "./dead-letters.js";
import { failureKind, PermanentError, RetryableError, UnsupportedError } from "./errors.js";
import { HandlerTimeoutError } from "../appservice/errors.js";
import { nextTry, type InboxRetryPolicy } from "./retry-policy.js";
import { HANDLER_NAMES, type LaneWork } from "./work.js";

export interface LanesOptions {
  logger: Logger;
  metrics: AppserviceMetrics;
  /** Handler calls at once, across lanes. */
  concurrency: number;
  /** How long one call may take before it counts as failed (and is retried). */
  handlerTimeoutMs: number;
  retry: InboxRetryPolicy;
  deadLetters: DeadLetters;
  /**
   * Called once a dead letter is stored (tell the sender). Must not throw; a rejection is
   * logged. Not awaited by the lane.
   */
  onDeadLetter?: (letter: DeadLetter) => Promise<void>;
}

/** Why a lane's wait for a retry ended. */
type Wake = "timer" | "now" | "late-success" | "closed";

class Lane {
  readonly queue: LaneWork[] = [];
  running = false;
  /** Set while the lane waits for a retry: ends the wait. */
  wake: ((why: Wake) => void) | undefined;
  /** The item in progress succeeded after its timeout (it need not be tried again). */
  lateSuccess: LaneWork | undefined;

  constructor(readonly id: string) {}
}

/** One try of one item: what the CallTimer runs, and the context the handler gets. */
class Attempt implements TimedTask {
  private logger: Logger | undefined;

  constructor(
    readonly work: LaneWork,
    readonly lane: Lane,
    private readonly base: Logger,
  ) {}

  get txnId(): string {
    return this.work.txnId;
  }

  run(ctx: TransactionContext): Promise<void> | void {
    return this.work.run(ctx);
  }

  /** A logger naming the item; made only when a handler or a log line asks for it. */
  log(): Logger {
    return (this.logger ??= this.base.child(logContext(this.work)));
  }
}

/** Runs recorded items through their handlers, one lane per room. See the invariants above. */
export class Lanes {
  private readonly lanes = new Map<string, Lane>();
  /** onDeadLetter calls still running (each tells a sender), so drain() can wait for them. */
  private readonly telling = new Set<Promise<void>>();
  private readonly slots: ConcurrencyLimit;
  private readonly timer: CallTimer<Attempt>;
  private closing = false;
  private idle: { promise: Promise<void>; resolve: () => void } | undefined;
  private waitingCount = 0;

  constructor(private readonly o: LanesOptions) {
    this.slots = new ConcurrencyLimit(o.concurrency);
    this.timer = new CallTimer<Attempt>(o.handlerTimeoutMs, {
      settled: (attempt, handler, ms) => {
        this.slots.release();
        o.metrics.handlerSeconds.labels(handler).observe(ms / 1000);
      },
      lateSuccess: (attempt) => {
        attempt.log().warn("handler succeeded after its timeout");
        // If the lane is still waiting to try this item again, it need not.
        if (attempt.lane.queue[0] === attempt.work) {
          attempt.lane.lateSuccess = attempt.work;
          attempt.lane.wake?.("late-success");
        }
      },
      lateFailure: (attempt, _handler, err) =>
        attempt.log().warn({ err }, "handler failed after its timeout"),
    });
  }

  /** Handler calls running or waiting for a slot. */
  get depth(): number {
    return this.slots.size;
  }

  /** Lanes waiting to retry an item. */
  get waitingRetry(): number {
    return this.waitingCount;
  }

  /** Queues work at the end of its lane; the lane starts if it was idle. */
  enqueue(work: LaneWork): void {
    if (this.closing) return; // recorded: handled after the next start
    let lane = this.lanes.get(work.lane);
    if (!lane) this.lanes.set(work.lane, (lane = new Lane(work.lane)));
    lane.queue.push(work);
    if (!lane.running) {
      lane.running = true;
      void this.runLane(lane);
    }
  }

  /** The remote network is back: every lane waiting for a retry tries at once. */
  retryNow(): void {
    for (const lane of this.lanes.values()) lane.wake?.("now");
  }

  /** Resolves once every lane is idle (retries included) and every dead letter's sender was told. */
  async drain(): Promise<void> {
    while (this.lanes.size > 0 || this.telling.size > 0) {
      if (this.lanes.size > 0) {
        this.idle ??= withResolve();
        await this.idle.promise;
      } else await Promise.all(this.telling);
    }
  }

  /**
   * Stops: no new item starts, waits for retries end, and handlers still running are asked
   * to stop (their signal is aborted). Resolves once every lane is idle. What was not handled
   * stays in the inbox for the next start.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const lane of this.lanes.values()) lane.wake?.("closed");
    this.timer.abortAll(new Error("the bridge is shutting down"));
    // Not drain(): a notice still being sent (retried while the homeserver is down) must not hold up shutdown.
    while (this.lanes.size > 0) {
      this.idle ??= withResolve();
      await this.idle.promise;
    }
  }

  private async runLane(lane: Lane): Promise<void> {
    try {
      while (lane.queue.length > 0 && !this.closing) {
        const work = lane.queue[0]!;
        if (!(await this.runWork(lane, work))) break;
        lane.queue.shift();
      }
    } catch (err) {
      // A bug here, not a handler's failure (those are decided on in runWork).
      this.o.logger.error({ err, lane: lane.id }, "lane stopped unexpectedly; its items stay in the inbox");
    } finally {
      lane.running = false;
      lane.wake = undefined;
      this.lanes.delete(lane.id);
      if (this.lanes.size === 0 && this.idle) {
        this.idle.resolve();
        this.idle = undefined;
      }
    }
  }

  /** Tries an item until it is over; false if the lanes closed first (it stays pending). */
  private async runWork(lane: Lane, work: LaneWork): Promise<boolean> {
    const handler = HANDLER_NAMES[work.item.kind];
    for (;;) {
      const attempt = new Attempt(work, lane, this.o.logger);
      if (work.attempts++ === 0) work.firstTriedAt = Date.now();
      const err = await this.call(handler, attempt);
      if (!err) {
        if (lane.lateSuccess === work) lane.lateSuccess = undefined;
        this.o.metrics.countEvents(metricKind(work), 1);
        return this.finish(work, "handled");
      }
      const kind = failureKind(err);
      const reason = err instanceof HandlerTimeoutError ? "timeout" : kind === "unexpected" ? "error" : kind;
      this.o.metrics.errors.inc({ handler, reason });
      const next = nextTry(this.o.retry, err, work.attempts, work.firstTriedAt, Date.now());
      if (!next.retry) {
        attempt
          .log()
          .error({ err, attempts: work.attempts }, `${handler} failed; giving up (${next.reason})`);
        await this.deadLetter(work, err, err instanceof UnsupportedError ? "unsupported" : next.reason);
        return this.finish(work, "dead");
      }
      attempt
        .log()
        .warn({ err, attempts: work.attempts, retryInMs: next.delayMs }, `${handler} failed; will retry`);
      this.o.metrics.retries.inc();
      const why = await this.sleep(lane, next.delayMs);
      if (why === "closed") return false;
      if (why === "late-success" || lane.lateSuccess === work) {
        lane.lateSuccess = undefined;
        return this.finish(work, "handled");
      }
    }
  }

  /** One call in a concurrency slot, with the timeout; resolves with its error, if any. */
  private call(handler: string, attempt: Attempt): Promise<Error | undefined> {
    return new Promise((resolve) => {
      const start = () => this.timer.call(handler, attempt, resolve);
      const wait = this.slots.acquire();
      if (wait) void wait.then(start);
      else start();
    });
  }

  /** Waits `ms` or until woken. */
  private sleep(lane: Lane, ms: number): Promise<Wake> {
    this.waitingCount++;
    return new Promise<Wake>((resolve) => {
      const timer = setTimeout(() => lane.wake?.("timer"), ms);
      lane.wake = (why) => {
        clearTimeout(timer);
        lane.wake = undefined;
        this.waitingCount--;
        resolve(why);
      };
      if (this.closing) lane.wake("closed");
    });
  }

  /**
   * Records the work as over, trying again (every second, up to 30 s apart) while the store
   * refuses; false if the lanes closed first (then it is handled again after a restart).
   */
  private async finish(work: LaneWork, outcome: "handled" | "dead"): Promise<boolean> {
    for (let delay = 1_000; ; delay = Math.min(delay * 2, 30_000)) {
      try {
        await work.finish(outcome);
        return true;
      } catch (err) {
        this.o.metrics.errors.inc({ handler: "inbox", reason: "error" });
        this.o.logger.error({ err, ...logContext(work) }, "could not record an item as over; trying again");
        if (this.closing) return false;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Stores the dead letter (trying again while the store refuses), then tells the hook. */
  private async deadLetter(work: LaneWork, err: Error, reason: DeadLetterReason): Promise<void> {
    const now = Date.now();
    const letter: DeadLetter = {
      id: work.id,
      item: work.item,
      reason,
      error: { name: err.name, message: err.message },
      userMessage: userMessage(err, reason, work.attempts),
      attempts: work.attempts,
      firstTriedAt: work.firstTriedAt,
      lastTriedAt: now,
      deadAt: now,
    };
    if (work.item.kind === "event") letter.roomId = work.item.event.room_id;
    for (let delay = 1_000; ; delay = Math.min(delay * 2, 30_000)) {
      try {
        const dropped = await this.o.deadLetters.add(letter);
        if (dropped.length > 0)
          this.o.logger.warn(
            { dropped: dropped.length, max: this.o.deadLetters.max },
            "oldest dead letters dropped",
          );
        break;
      } catch (storeErr) {
        this.o.logger.error(
          { err: storeErr, ...logContext(work) },
          "could not store a dead letter; trying again",
        );
        if (this.closing) return;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    this.o.metrics.deadLetters.inc({ reason });
    const hook = this.o.onDeadLetter;
    if (hook) {
      // Not awaited: the lane goes on while the sender is told; drain() waits for it.
      const told = hook(letter)
        .catch((hookErr: unknown) =>
          this.o.logger.warn(
            { err: hookErr, ...logContext(work) },
            "could not tell the sender about a dead letter",
          ),
        )
        .finally(() => this.telling.delete(told));
      this.telling.add(told);
    }
  }
}

/** What the sender is told when their event is dead-lettered. Never a stack trace or a secret. */
function userMessage(err: Error, reason: DeadLetterReason, attempts: number): string {
  if (err instanceof PermanentError) return err.userMessage;
  if (err instanceof RetryableError && err.userMessage !== undefined) return err.userMessage;
  if (err instanceof HandlerTimeoutError) return `the bridge timed out delivering it (${attempts} tries)`;
  return reason === "exhausted"
    ? `the bridge could not deliver it (${attempts} ${attempts === 1 ? "try" : "tries"})`
    : "the bridge could not deliver it";
}

function logContext(work: LaneWork): Record<string, unknown> {
  const item = work.item;
  return item.kind === "event"
    ? { eventId: item.event.event_id, roomId: item.event.room_id, transactionId: work.txnId }
    : { kind: item.kind, transactionId: work.txnId };
}

function metricKind(work: LaneWork): string {
  const item = work.item;
  if (item.kind !== "event") return item.kind;
  return item.event.state_key === undefined ? "message" : "state";
}

function withResolve(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
