import type { Logger } from "../common/logger.js";
import { isStateEvent, type MatrixEvent } from "../matrix/events.js";
import { TransactionJournal } from "../store/journal.js";
import { HandlerTimeoutError, TransactionFailedError } from "./errors.js";
import type { AppserviceHandlers, TransactionContext } from "./handlers.js";
import type { AppserviceMetrics } from "./metrics.js";
import { CallTimer, type TimedTask } from "./call-timer.js";
import { ConcurrencyLimit } from "./concurrency-limit.js";
import type { ParsedTransaction } from "./transaction-body.js";

export interface DispatcherOptions {
  handlers: AppserviceHandlers;
  journal: TransactionJournal;
  logger: Logger;
  metrics: AppserviceMetrics;
  /** How many rooms are handled at once (default 8). */
  concurrency: number;
  /** How long one handler call may take before it counts as failed (ms). */
  handlerTimeoutMs: number;
}

type ExtraKind = "ephemeral" | "to_device" | "device_lists" | "key_counts";

/**
 * Hands a validated transaction's data to the handlers: room events one room at a time in
 * order (across transactions too) with rooms in parallel, at most `concurrency` handler
 * calls at once; the data without event ids once per transaction. Records each handled item
 * in the journal right after its handler succeeded and skips items recorded before. Does
 * not commit the transaction: that is the caller's job once `dispatch` resolved.
 *
 * The per-event path is callbacks, not async functions: a room's events are run by one
 * `LaneTask` object that steps from event to event, so an event costs its handler's own
 * promise and little else (no promise chain per room, no promise per call or per record).
 */
export class Dispatcher {
  private readonly slots: ConcurrencyLimit;
  /** Each busy lane (a room, or one kind of extras): its running task and those queued. */
  private readonly lanes = new Map<string, LaneTask[]>();
  /** Resolved when the last lane goes idle (for drain). */
  private idle: { promise: Promise<void>; resolve: () => void } | undefined;
  private readonly timer: CallTimer<LaneTask>;

  constructor(readonly opts: DispatcherOptions) {
    this.slots = new ConcurrencyLimit(opts.concurrency);
    const { logger } = opts;
    this.timer = new CallTimer<LaneTask>(opts.handlerTimeoutMs, {
      // The slot is given back as the call settles, before its caller resumes.
      settled: (_task, handler, ms) => {
        this.slots.release();
        opts.metrics.handlerSeconds.labels(handler).observe(ms / 1000);
      },
      lateSuccess: (task, handler) => {
        logger.warn(
          { ...task.logContext(), transactionId: task.txnId, handler },
          "handler succeeded after its timeout",
        );
        task
          .recordCurrent()
          .catch((err: unknown) =>
            logger.error({ err, ...task.logContext(), handler }, "could not record a late success"),
          );
      },
      lateFailure: (task, handler, err) =>
        logger.warn(
          { err, ...task.logContext(), transactionId: task.txnId, handler },
          "handler failed after its timeout",
        ),
    });
  }

  /** Handler calls waiting for or holding a concurrency slot. */
  get depth(): number {
    return this.slots.size;
  }

  /**
   * Delivers everything not in `done` (what earlier attempts handled). Resolves when all of
   * it was handled; rejects with TransactionFailedError after every room finished or stopped
   * at its first failure.
   */
  dispatch(txnId: string, txn: ParsedTransaction, done: ReadonlySet<string>): Promise<void> {
    const byRoom = new Map<string, MatrixEvent[]>();
    const seen = new Set<string>();
    for (const event of txn.events) {
      const id = event.event_id;
      if (seen.has(id)) continue; // the same event twice in one body runs once
      seen.add(id);
      if (done.has(id)) continue;
      const list = byRoom.get(event.room_id);
      if (list) list.push(event);
      else byRoom.set(event.room_id, [event]);
    }
    const extras = this.extras(txnId, txn).filter((extra) => !done.has(extra.key));
    const outcome = new TxnOutcome(txnId, byRoom.size + extras.length);
    for (const [roomId, events] of byRoom) this.enqueue(new RoomTask(this, outcome, roomId, events));
    // Each kind of extras in order across transactions, like a room's events.
    for (const extra of extras) this.enqueue(new ExtraTask(this, outcome, extra));
    return outcome.promise;
  }

  /** Resolves once every lane task queued so far has finished. */
  async drain(): Promise<void> {
    while (this.lanes.size > 0) {
      this.idle ??= withResolve();
      await this.idle.promise;
    }
  }

  /**
   * Runs `task` after everything queued before it in this lane. The lane's next task waits
   * also for the task's last journal record, which the transaction does not wait for: its
   * commit is written with it (one write less per transaction), and a crash before that
   * write redelivers at most that one item.
   */
  private enqueue(task: LaneTask): void {
    const queue = this.lanes.get(task.lane);
    if (queue) queue.push(task);
    else {
      this.lanes.set(task.lane, [task]);
      task.step();
    }
  }

  /** @internal A lane task is over (its last record durable or failed): the next one starts. */
  laneDone(lane: string): void {
    const queue = this.lanes.get(lane)!;
    queue.shift();
    const next = queue[0];
    if (next) return next.step();
    this.lanes.delete(lane);
    if (this.lanes.size === 0 && this.idle) {
      this.idle.resolve();
      this.idle = undefined;
    }
  }

  /**
   * @internal Calls a handler in a concurrency slot, with the timeout; `done` gets the
   * outcome. A free slot is taken synchronously, and given back by the timer's `settled`
   * hook. Only the handler call holds a slot; waiting for the journal does not, so other
   * rooms' handlers run meanwhile and their records share its batch.
   */
  call(handler: string, task: LaneTask, done: (err: Error | undefined) => void): void {
    const wait = this.slots.acquire();
    if (!wait) return this.timer.call(handler, task, done);
    void wait.then(() => this.timer.call(handler, task, done));
  }

  /** @internal Logs and counts a failed (or timed-out) handler call. */
  callFailed(handler: string, task: LaneTask, err: unknown): void {
    const reason = err instanceof HandlerTimeoutError ? "timeout" : "error";
    this.opts.metrics.errors.inc({ handler, reason });
    this.opts.logger.error(
      { err, ...task.logContext(), transactionId: task.txnId, handler },
      `${handler} failed; the transaction will be retried`,
    );
  }

  /** @internal Logs and counts a journal write that failed. */
  recordFailed(err: unknown, task: LaneTask, context: Record<string, unknown>): void {
    this.opts.metrics.errors.inc({ handler: "journal", reason: "error" });
    this.opts.logger.error(
      { err, ...context, transactionId: task.txnId },
      "could not record a handled item in the journal",
    );
  }

  private extras(txnId: string, txn: ParsedTransaction): Extra[] {
    const h = this.opts.handlers;
    const out: Extra[] = [];
    const add = (kind: ExtraKind, handlerName: string, count: number, run: Extra["run"]) =>
      out.push({ kind, handlerName, count, run, key: TransactionJournal.extrasKey(txnId, kind) });
    if (txn.ephemeral.length > 0 && h.onEphemeral) {
      const onEphemeral = h.onEphemeral.bind(h);
      add("ephemeral", "Ephemeral", txn.ephemeral.length, (ctx) => onEphemeral(txn.ephemeral, ctx));
    }
    if (txn.toDevice.length > 0 && h.onToDevice) {
      const onToDevice = h.onToDevice.bind(h);
      add("to_device", "ToDevice", txn.toDevice.length, (ctx) => onToDevice(txn.toDevice, ctx));
    }
    const lists = txn.deviceLists;
    if (lists && h.onDeviceLists) {
      const onDeviceLists = h.onDeviceLists.bind(h);
      add("device_lists", "DeviceLists", 1, (ctx) => onDeviceLists(lists, ctx));
    }
    const counts = txn.keyCounts;
    if (counts && h.onOneTimeKeyCounts) {
      const onCounts = h.onOneTimeKeyCounts.bind(h);
      add("key_counts", "OneTimeKeyCounts", 1, (ctx) => onCounts(counts, ctx));
    }
    return out;
  }
}

/** Settles a transaction's dispatch once each of its lane tasks reported: one promise per transaction. */
class TxnOutcome {
  readonly promise: Promise<void>;
  private resolve!: () => void;
  private reject!: (err: Error) => void;
  private failures = 0;

  constructor(
    readonly txnId: string,
    private remaining: number,
  ) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (remaining === 0) this.resolve();
  }

  /** A lane task handled everything it had (ok) or stopped at a failure. */
  report(ok: boolean): void {
    if (!ok) this.failures++;
    if (--this.remaining > 0) return;
    if (this.failures > 0) this.reject(new TransactionFailedError(this.txnId, this.failures));
    else this.resolve();
  }
}

/**
 * One lane's share of a transaction: a room's events, or one kind of extras. Steps through
 * its items: waits for the previous item's record to be durable, takes a slot, calls the
 * handler, records the item; stops at the first failure (later items must wait for the
 * retry). The CallTimer's task for each of its calls (one at a time).
 */
abstract class LaneTask implements TimedTask {
  /** The item being handled (or next to be). */
  protected i = 0;
  /** The last handled item's record, not yet known durable. */
  private recorded: Promise<void> | undefined;
  /** Which item `recorded` is for (named in the log if its write fails). */
  private recordedAt = 0;
  private over = false;

  constructor(
    protected readonly d: Dispatcher,
    private readonly outcome: TxnOutcome,
    /** The lane it runs in: a room id, or a kind of extras (never a room id). */
    readonly lane: string,
    private readonly count: number,
    private readonly handler: string,
  ) {}

  get txnId(): string {
    return this.outcome.txnId;
  }

  abstract run(ctx: TransactionContext): Promise<void> | void;
  /** Skip item i: another transaction handled it meanwhile. */
  protected abstract skip(i: number): boolean;
  /** Records item i as handled; the promise is the journal batch's. */
  protected abstract record(i: number): Promise<void>;
  /** Item i was handled: count it (by kind, added to the metrics in `countHandled`). */
  protected abstract tally(i: number): void;
  /** Adds what `tally` counted to the metrics, once the task is over. */
  protected abstract countHandled(): void;
  /** What to name in a log line about item i (default: the item being handled). */
  abstract logContext(i?: number): Record<string, unknown>;

  /** Records the item being handled (a success that came after its timeout). */
  recordCurrent(): Promise<void> {
    return this.record(this.i);
  }

  /** Runs items until one must be waited for (a record, a slot, a handler's promise). */
  step(): void {
    try {
      this.steps();
    } catch (err) {
      // A bug, not a handler's failure (those arrive as `err` below): fail the task, loudly.
      this.d.opts.logger.error({ err, lane: this.lane }, "lane task failed unexpectedly");
      if (!this.over) this.finish(false);
    }
  }

  private steps(): void {
    while (this.i < this.count) {
      if (this.skip(this.i)) {
        this.i++;
        continue;
      }
      const recorded = this.recorded;
      if (recorded) {
        this.recorded = undefined;
        recorded.then(this.onRecorded, this.onRecordFailed);
        return;
      }
      let sync = true;
      let settled = false;
      this.d.call(this.handler, this, (err) => {
        settled = true;
        if (err) return this.fail(err);
        this.handled();
        if (!sync) this.step();
      });
      sync = false;
      if (!settled || this.over) return;
    }
    this.finish(true);
  }

  private handled(): void {
    this.tally(this.i);
    this.recordedAt = this.i;
    this.recorded = this.record(this.i);
    this.i++;
  }

  private readonly onRecorded = (): void => this.step();

  private readonly onRecordFailed = (err: unknown): void => {
    this.d.recordFailed(err, this, this.logContext(this.recordedAt));
    this.finish(false, true);
  };

  private fail(err: Error): void {
    this.d.callFailed(this.handler, this, err);
    this.finish(false);
  }

  /**
   * Reports to the transaction, then frees the lane once the last record is durable (at
   * once when there is none, or when the task failed: nothing after it in this lane may
   * assume it handled).
   */
  private finish(ok: boolean, recordFailed = false): void {
    this.over = true;
    this.countHandled();
    const last = ok ? this.recorded : undefined;
    this.recorded = undefined;
    this.outcome.report(ok);
    if (!last || recordFailed) return this.d.laneDone(this.lane);
    last.then(
      () => this.d.laneDone(this.lane),
      (err: unknown) => {
        this.d.recordFailed(err, this, this.logContext(this.recordedAt));
        this.d.laneDone(this.lane);
      },
    );
  }
}

/** A room's events of one transaction, in order. */
class RoomTask extends LaneTask {
  private messages = 0;
  private states = 0;

  constructor(
    d: Dispatcher,
    outcome: TxnOutcome,
    roomId: string,
    private readonly events: MatrixEvent[],
  ) {
    super(d, outcome, roomId, events.length, "onEvent");
  }

  run(ctx: TransactionContext) {
    return this.d.opts.handlers.onEvent(this.events[this.i]!, ctx);
  }

  // A concurrent transaction carrying the same event may have handled it meanwhile.
  protected skip(i: number): boolean {
    return this.d.opts.journal.wasHandledRecently(this.events[i]!.event_id);
  }

  protected record(i: number): Promise<void> {
    return this.d.opts.journal.markHandled(this.txnId, this.events[i]!.event_id);
  }

  protected tally(i: number): void {
    if (isStateEvent(this.events[i]!)) this.states++;
    else this.messages++;
  }

  protected countHandled(): void {
    if (this.messages > 0) this.d.opts.metrics.countEvents("message", this.messages);
    if (this.states > 0) this.d.opts.metrics.countEvents("state", this.states);
  }

  logContext(i = this.i) {
    const event = this.events[Math.min(i, this.events.length - 1)]!;
    return { eventId: event.event_id, roomId: event.room_id };
  }
}

/** One kind of a transaction's data without event ids, handed over in one call. */
class ExtraTask extends LaneTask {
  constructor(
    d: Dispatcher,
    outcome: TxnOutcome,
    private readonly extra: Extra,
  ) {
    super(d, outcome, `\u0000${extra.kind}`, 1, "on" + extra.handlerName);
  }

  run(ctx: TransactionContext) {
    return this.extra.run(ctx);
  }

  protected skip(): boolean {
    return false;
  }

  protected record(): Promise<void> {
    return this.d.opts.journal.markHandled(this.txnId, this.extra.key);
  }

  private handledIt = false;

  protected tally(): void {
    this.handledIt = true;
  }

  protected countHandled(): void {
    if (this.handledIt) this.d.opts.metrics.countEvents(this.extra.kind, this.extra.count);
  }

  logContext() {
    return { kind: this.extra.kind };
  }
}

interface Extra {
  kind: ExtraKind;
  handlerName: string;
  key: string;
  count: number;
  run: (ctx: TransactionContext) => Promise<void>;
}

function withResolve(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
