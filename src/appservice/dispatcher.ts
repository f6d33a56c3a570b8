import PQueue from "p-queue";
import type { Logger } from "../common/logger.js";
import { isStateEvent, type MatrixEvent } from "../matrix/events.js";
import { TransactionJournal } from "../store/journal.js";
import { HandlerTimeoutError, TransactionFailedError } from "./errors.js";
import type { AppserviceHandlers, TransactionContext } from "./handlers.js";
import type { AppserviceMetrics } from "./metrics.js";
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
 * order (across transactions too) with rooms in parallel, bounded by a p-queue; the data
 * without event ids once per transaction. Records each handled item in the journal right
 * after its handler succeeded and skips items recorded before. Does not commit the
 * transaction: that is the caller's job once `dispatch` resolved.
 */
export class Dispatcher {
  private readonly queue: PQueue;
  /** The tail of each room's chain of work; an entry exists only while the room is busy. */
  private readonly lanes = new Map<string, Promise<void>>();

  constructor(private readonly opts: DispatcherOptions) {
    this.queue = new PQueue({ concurrency: opts.concurrency });
  }

  /** Room tasks queued or running. */
  get depth(): number {
    return this.queue.size + this.queue.pending;
  }

  /**
   * Delivers everything not yet handled. Resolves when all of it was handled; rejects with
   * TransactionFailedError after every room finished or stopped at its first failure.
   */
  async dispatch(txnId: string, txn: ParsedTransaction): Promise<void> {
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
    const done = await this.opts.journal.handledAmong([...seen, ...extras.map((x) => x.key)]);

    const work: Array<Promise<boolean>> = [];
    for (const [roomId, events] of byRoom) {
      const pending = events.filter((e) => !done.has(e.event_id));
      if (pending.length > 0) work.push(this.inLane(roomId, () => this.runRoom(txnId, pending)));
    }
    for (const extra of extras) {
      if (!done.has(extra.key)) work.push(this.queue.add(() => this.runExtra(txnId, extra)));
    }
    const results = await Promise.all(work);
    const failures = results.filter((ok) => !ok).length;
    if (failures > 0) throw new TransactionFailedError(txnId, failures);
  }

  /** Resolves once every room task queued so far has finished. */
  async drain(): Promise<void> {
    await Promise.all([...this.lanes.values()]);
    await this.queue.onIdle();
  }

  /** Runs `task` after everything queued before it for this room; the result never rejects. */
  private inLane(roomId: string, task: () => Promise<boolean>): Promise<boolean> {
    const previous = this.lanes.get(roomId) ?? Promise.resolve();
    const result = previous
      .then(() => this.queue.add(task))
      .then(
        (ok) => ok,
        (err: unknown) => {
          this.opts.logger.error({ err, roomId }, "room task failed unexpectedly");
          return false;
        },
      );
    const tail = result.then(() => undefined);
    this.lanes.set(roomId, tail);
    void tail.then(() => {
      if (this.lanes.get(roomId) === tail) this.lanes.delete(roomId);
    });
    return result;
  }

  /** Handles one room's events in order; stops at the first failure (later ones must wait). */
  private async runRoom(txnId: string, events: MatrixEvent[]): Promise<boolean> {
    const { journal } = this.opts;
    for (const event of events) {
      // A concurrent transaction carrying the same event may have handled it meanwhile.
      if (journal.wasHandledRecently(event.event_id)) continue;
      const kind = isStateEvent(event) ? "state" : "message";
      const ok = await this.call(
        "onEvent",
        txnId,
        { eventId: event.event_id, roomId: event.room_id },
        (ctx) => this.opts.handlers.onEvent(event, ctx),
        () => journal.markHandled(event.event_id),
      );
      if (!ok) return false;
      this.opts.metrics.events.inc({ kind });
    }
    return true;
  }

  private async runExtra(txnId: string, extra: Extra): Promise<boolean> {
    const ok = await this.call("on" + extra.handlerName, txnId, { kind: extra.kind }, extra.run, () =>
      this.opts.journal.markHandled(extra.key),
    );
    if (ok) this.opts.metrics.events.inc({ kind: extra.kind }, extra.count);
    return ok;
  }

  /**
   * Calls a handler with the timeout; on success records it with `record`. Returns false on
   * failure (logged and counted). A handler that succeeds after its timeout is recorded
   * then, so a later retry skips it; its late outcome changes nothing else.
   */
  private async call(
    handler: string,
    transactionId: string,
    logContext: Record<string, unknown>,
    run: (ctx: TransactionContext) => Promise<void>,
    record: () => Promise<void>,
  ): Promise<boolean> {
    const { logger, metrics, handlerTimeoutMs } = this.opts;
    const stopTimer = metrics.handlerSeconds.startTimer({ handler });
    try {
      await withTimeout(handler, handlerTimeoutMs, (signal) => run({ signal, transactionId }), {
        onLateSuccess: () => {
          logger.warn({ ...logContext, transactionId, handler }, "handler succeeded after its timeout");
          record().catch((err: unknown) =>
            logger.error({ err, ...logContext, handler }, "could not record a late success"),
          );
        },
        onLateFailure: (err) =>
          logger.warn({ err, ...logContext, transactionId, handler }, "handler failed after its timeout"),
      });
    } catch (err) {
      const reason = err instanceof HandlerTimeoutError ? "timeout" : "error";
      metrics.errors.inc({ handler, reason });
      logger.error(
        { err, ...logContext, transactionId, handler },
        `${handler} failed; the transaction will be retried`,
      );
      return false;
    } finally {
      stopTimer();
    }
    try {
      await record();
    } catch (err) {
      metrics.errors.inc({ handler: "journal", reason: "error" });
      logger.error({ err, ...logContext, transactionId }, "could not record a handled item in the journal");
      return false;
    }
    return true;
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

interface Extra {
  kind: ExtraKind;
  handlerName: string;
  key: string;
  count: number;
  run: (ctx: TransactionContext) => Promise<void>;
}
