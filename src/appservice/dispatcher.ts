import type { Logger } from "../common/logger.js";
import { isStateEvent, type MatrixEvent } from "../matrix/events.js";
import { TransactionJournal } from "../store/journal.js";
import { HandlerTimeoutError, TransactionFailedError } from "./errors.js";
import type { AppserviceHandlers, TransactionContext } from "./handlers.js";
import type { AppserviceMetrics } from "./metrics.js";
import { CallTimer, type TimedTask } from "./call-timer.js";
import { ConcurrencyLimit } from "./concurrency-limit.js";
import type { HistogramSeries } from "./lean-histogram.js";
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
 */
export class Dispatcher {
  private readonly slots: ConcurrencyLimit;
  /** The tail of each room's chain of work; an entry exists only while the room is busy. */
  private readonly lanes = new Map<string, Promise<void>>();
  /** Metric children by label, looked up once (a labelled lookup per event adds up). */
  private readonly eventsByKind = new Map<string, { inc(n?: number): void }>();
  private readonly secondsByHandler = new Map<string, HistogramSeries>();
  private readonly timer: CallTimer<Item>;

  constructor(private readonly opts: DispatcherOptions) {
    this.slots = new ConcurrencyLimit(opts.concurrency);
    const { logger } = opts;
    this.timer = new CallTimer<Item>(opts.handlerTimeoutMs, {
      // The slot is given back as the call settles, before its caller resumes.
      settled: (_item, handler, ms) => {
        this.slots.release();
        this.observeSeconds(handler, ms / 1000);
      },
      lateSuccess: (item, handler) => {
        logger.warn(
          { ...item.logContext(), transactionId: item.txnId, handler },
          "handler succeeded after its timeout",
        );
        item
          .record()
          .catch((err: unknown) =>
            logger.error({ err, ...item.logContext(), handler }, "could not record a late success"),
          );
      },
      lateFailure: (item, handler, err) =>
        logger.warn(
          { err, ...item.logContext(), transactionId: item.txnId, handler },
          "handler failed after its timeout",
        ),
    });
  }

  /** Handler calls waiting for or holding a concurrency slot. */
  get depth(): number {
    return this.slots.size;
  }

  /**
   * Delivers everything not in `done` (what earlier attempts handled). Resolves when all of it was handled; rejects with
   * TransactionFailedError after every room finished or stopped at its first failure.
   */
  async dispatch(txnId: string, txn: ParsedTransaction, done: ReadonlySet<string>): Promise<void> {
    const byRoom = new Map<string, MatrixEvent[]>();
    const seen = new Set<string>();
    for (const event of txn.events) {
      if (seen.has(event.event_id)) continue; // the same event twice in one body runs once
      seen.add(event.event_id);
      const list = byRoom.get(event.room_id);
      if (list) list.push(event);
      else byRoom.set(event.room_id, [event]);
    }
    const extras = this.extras(txnId, txn);

    const work: Array<Promise<boolean>> = [];
    for (const [roomId, events] of byRoom) {
      const pending = events.filter((e) => !done.has(e.event_id));
      if (pending.length > 0) work.push(this.inLane(roomId, () => this.runRoom(txnId, pending)));
    }
    for (const extra of extras) {
      // Each kind in order across transactions, like a room's events.
      if (!done.has(extra.key))
        work.push(this.inLane(`\u0000${extra.kind}`, () => this.runExtra(txnId, extra)));
    }
    const results = await Promise.all(work);
    const failures = results.filter((ok) => !ok).length;
    if (failures > 0) throw new TransactionFailedError(txnId, failures);
  }

  /** Resolves once every room task queued so far has finished. */
  async drain(): Promise<void> {
    while (this.lanes.size > 0) await Promise.all([...this.lanes.values()]);
  }

  /**
   * Runs `task` after everything queued before it in this lane (a room, or one kind of
   * extras); resolves with whether every item was handled, and never rejects. The lane's
   * next task waits also for the task's last journal record, which the transaction does
   * not wait for: its commit is written with it (one write less per transaction), and a
   * crash before that write redelivers at most that one item.
   */
  private inLane(lane: string, task: () => Promise<LaneResult>): Promise<boolean> {
    const previous = this.lanes.get(lane) ?? Promise.resolve();
    const result = previous.then(task).catch((err: unknown): LaneResult => {
      this.opts.logger.error({ err, lane }, "room task failed unexpectedly");
      return { ok: false };
    });
    const tail = result.then((r) => r.recorded).then(() => undefined);
    this.lanes.set(lane, tail);
    void tail.then(() => {
      if (this.lanes.get(lane) === tail) this.lanes.delete(lane);
    });
    return result.then((r) => r.ok);
  }

  /**
   * Handles one room's events in order; stops at the first failure (later ones must wait).
   * Each event's record is durable before the room's next event is handled.
   */
  private async runRoom(txnId: string, events: MatrixEvent[]): Promise<LaneResult> {
    const { journal, handlers } = this.opts;
    let recorded: Promise<void> | undefined;
    let recordedItem: Item | undefined;
    let messages = 0;
    let states = 0;
    try {
      for (const event of events) {
        // A concurrent transaction carrying the same event may have handled it meanwhile.
        if (journal.wasHandledRecently(event.event_id)) continue;
        if (recorded) {
          // Inline rather than through recorded(): one async call less per event.
          try {
            await recorded;
          } catch (err) {
            this.recordFailed(err, recordedItem!);
            return FAILED;
          }
        }
        const item = new EventItem(txnId, event, handlers, journal);
        try {
          await this.call("onEvent", item);
        } catch (err) {
          this.callFailed("onEvent", item, err);
          return FAILED;
        }
        if (isStateEvent(event)) states++;
        else messages++;
        recorded = journal.markHandled(txnId, event.event_id);
        recordedItem = item;
      }
    } finally {
      if (messages > 0) this.countEvents("message", messages);
      if (states > 0) this.countEvents("state", states);
    }
    return { ok: true, recorded: recorded && this.recorded(recorded, recordedItem!) };
  }

  private async runExtra(txnId: string, extra: Extra): Promise<LaneResult> {
    const item = new ExtraItem(txnId, extra, this.opts.journal);
    const handler = "on" + extra.handlerName;
    try {
      await this.call(handler, item);
    } catch (err) {
      this.callFailed(handler, item, err);
      return FAILED;
    }
    this.countEvents(extra.kind, extra.count);
    return { ok: true, recorded: this.recorded(item.record(), item) };
  }

  /** Waits for a handled item's record; false (logged, counted) if it failed. Never rejects. */
  private async recorded(record: Promise<void>, item: Item): Promise<boolean> {
    try {
      await record;
      return true;
    } catch (err) {
      this.recordFailed(err, item);
      return false;
    }
  }

  private recordFailed(err: unknown, item: Item): void {
    this.opts.metrics.errors.inc({ handler: "journal", reason: "error" });
    this.opts.logger.error(
      { err, ...item.logContext(), transactionId: item.txnId },
      "could not record a handled item in the journal",
    );
  }

  /**
   * Calls a handler in a concurrency slot, with the timeout; the promise settles with the
   * call. Not an async function: a free slot is taken synchronously, and the slot is given
   * back by the timer's `settled` hook (one promise less per event). A handler that succeeds
   * after its timeout is recorded then, so a later retry skips it; its late outcome changes
   * nothing else.
   */
  private call(handler: string, item: Item): Promise<void> {
    // Only the handler call holds a slot; waiting for the journal does not, so other rooms'
    // handlers run meanwhile and their records share its batch.
    const wait = this.slots.acquire();
    return wait ? wait.then(() => this.timer.run(handler, item)) : this.timer.run(handler, item);
  }

  /** Logs and counts a failed (or timed-out) handler call. */
  private callFailed(handler: string, item: Item, err: unknown): void {
    const reason = err instanceof HandlerTimeoutError ? "timeout" : "error";
    this.opts.metrics.errors.inc({ handler, reason });
    this.opts.logger.error(
      { err, ...item.logContext(), transactionId: item.txnId, handler },
      `${handler} failed; the transaction will be retried`,
    );
  }

  private countEvents(kind: string, count: number): void {
    let child = this.eventsByKind.get(kind);
    if (!child) this.eventsByKind.set(kind, (child = this.opts.metrics.events.labels(kind)));
    child.inc(count);
  }

  private observeSeconds(handler: string, seconds: number): void {
    let series = this.secondsByHandler.get(handler);
    if (!series)
      this.secondsByHandler.set(handler, (series = this.opts.metrics.handlerSeconds.labels(handler)));
    series.observe(seconds);
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

/** How a lane task ended: whether everything was handled, and its last record's write. */
interface LaneResult {
  ok: boolean;
  recorded?: Promise<boolean> | undefined;
}

const FAILED: LaneResult = { ok: false };

/**
 * What one handler call is about: how to run it, record it, and name it in logs. A class, not
 * closures: one small object per event on the hot path.
 */
interface Item extends TimedTask {
  record(): Promise<void>;
  logContext(): Record<string, unknown>;
}

class EventItem implements Item {
  constructor(
    readonly txnId: string,
    private readonly event: MatrixEvent,
    private readonly handlers: AppserviceHandlers,
    private readonly journal: TransactionJournal,
  ) {}
  run(ctx: TransactionContext) {
    return this.handlers.onEvent(this.event, ctx);
  }
  record() {
    return this.journal.markHandled(this.txnId, this.event.event_id);
  }
  logContext() {
    return { eventId: this.event.event_id, roomId: this.event.room_id };
  }
}

class ExtraItem implements Item {
  constructor(
    readonly txnId: string,
    private readonly extra: Extra,
    private readonly journal: TransactionJournal,
  ) {}
  run(ctx: TransactionContext) {
    return this.extra.run(ctx);
  }
  record() {
    return this.journal.markHandled(this.txnId, this.extra.key);
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
