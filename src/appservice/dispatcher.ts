import type { Logger } from "../common/logger.js";
import { isStateEvent, type MatrixEvent } from "../matrix/events.js";
import { TransactionJournal } from "../store/journal.js";
import { HandlerTimeoutError, TransactionFailedError } from "./errors.js";
import type { AppserviceHandlers, TransactionContext } from "./handlers.js";
import type { AppserviceMetrics } from "./metrics.js";
import { ConcurrencyLimit } from "./concurrency-limit.js";
import { withTimeout } from "./timeout.js";
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
  private readonly secondsByHandler = new Map<string, { observe(v: number): void }>();

  constructor(private readonly opts: DispatcherOptions) {
    this.slots = new ConcurrencyLimit(opts.concurrency);
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
    const { journal } = this.opts;
    let recorded: Promise<boolean> | undefined;
    for (const event of events) {
      // A concurrent transaction carrying the same event may have handled it meanwhile.
      if (journal.wasHandledRecently(event.event_id)) continue;
      if (recorded && !(await recorded)) return { ok: false };
      const logContext = () => ({ eventId: event.event_id, roomId: event.room_id });
      const record = () => journal.markHandled(txnId, event.event_id);
      const ok = await this.call(
        "onEvent",
        txnId,
        logContext,
        (ctx) => this.opts.handlers.onEvent(event, ctx),
        record,
      );
      if (!ok) return { ok: false };
      this.countEvents(isStateEvent(event) ? "state" : "message", 1);
      recorded = this.record(txnId, logContext, record);
    }
    return { ok: true, recorded };
  }

  private async runExtra(txnId: string, extra: Extra): Promise<LaneResult> {
    const logContext = () => ({ kind: extra.kind });
    const record = () => this.opts.journal.markHandled(txnId, extra.key);
    const ok = await this.call("on" + extra.handlerName, txnId, logContext, extra.run, record);
    if (!ok) return { ok: false };
    this.countEvents(extra.kind, extra.count);
    return { ok: true, recorded: this.record(txnId, logContext, record) };
  }

  /** Writes a handled item's record; false (logged, counted) if that failed. Never rejects. */
  private async record(
    transactionId: string,
    logContext: () => Record<string, unknown>,
    record: () => Promise<void>,
  ): Promise<boolean> {
    try {
      await record();
      return true;
    } catch (err) {
      this.opts.metrics.errors.inc({ handler: "journal", reason: "error" });
      this.opts.logger.error(
        { err, ...logContext(), transactionId },
        "could not record a handled item in the journal",
      );
      return false;
    }
  }

  /**
   * Calls a handler with the timeout. Returns false on failure (logged and counted). A
   * handler that succeeds after its timeout is recorded then with `record`, so a later
   * retry skips it; its late outcome changes nothing else.
   */
  private async call(
    handler: string,
    transactionId: string,
    logContext: () => Record<string, unknown>,
    run: (ctx: TransactionContext) => Promise<void>,
    record: () => Promise<void>,
  ): Promise<boolean> {
    const { logger, metrics, handlerTimeoutMs } = this.opts;
    const started = performance.now();
    try {
      // Only the handler call holds a concurrency slot; waiting for the journal below does
      // not, so other rooms' handlers run meanwhile and their records share its batch.
      await this.slots.run(() =>
        withTimeout(
          handler,
          handlerTimeoutMs,
          (signal) =>
            run({
              get signal() {
                return signal();
              },
              transactionId,
            }),
          {
            onLateSuccess: () => {
              logger.warn({ ...logContext(), transactionId, handler }, "handler succeeded after its timeout");
              record().catch((err: unknown) =>
                logger.error({ err, ...logContext(), handler }, "could not record a late success"),
              );
            },
            onLateFailure: (err) =>
              logger.warn(
                { err, ...logContext(), transactionId, handler },
                "handler failed after its timeout",
              ),
          },
        ),
      );
    } catch (err) {
      const reason = err instanceof HandlerTimeoutError ? "timeout" : "error";
      metrics.errors.inc({ handler, reason });
      logger.error(
        { err, ...logContext(), transactionId, handler },
        `${handler} failed; the transaction will be retried`,
      );
      return false;
    } finally {
      this.observeSeconds(handler, (performance.now() - started) / 1000);
    }
    return true;
  }

  private countEvents(kind: string, count: number): void {
    let child = this.eventsByKind.get(kind);
    if (!child) this.eventsByKind.set(kind, (child = this.opts.metrics.events.labels(kind)));
    child.inc(count);
  }

  private observeSeconds(handler: string, seconds: number): void {
    let child = this.secondsByHandler.get(handler);
    if (!child)
      this.secondsByHandler.set(handler, (child = this.opts.metrics.handlerSeconds.labels(handler)));
    child.observe(seconds);
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
  recorded?: Promise<boolean>;
}

interface Extra {
  kind: ExtraKind;
  handlerName: string;
  key: string;
  count: number;
  run: (ctx: TransactionContext) => Promise<void>;
}
