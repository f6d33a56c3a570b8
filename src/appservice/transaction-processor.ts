import type { Logger } from "../common/logger.js";
import type { DeadLetter, DeadLetters } from "../inbox/dead-letters.js";
import type { Inbox, InboxTransaction } from "../inbox/inbox.js";
import type { Lanes } from "../inbox/lanes.js";
import { InboxWork, RetriedLetter } from "../inbox/work.js";
import { MatrixHttpError } from "./errors.js";
import type { AppserviceHandlers } from "./handlers.js";
import type { AppserviceMetrics } from "./metrics.js";
import { withTimeout } from "./timeout.js";
import type { ParsedTransaction } from "./transaction-body.js";

/** How a transaction was answered. */
export type TransactionOutcome = "recorded" | "duplicate";

export interface TransactionProcessorOptions {
  inbox: Inbox;
  lanes: Lanes;
  deadLetters: DeadLetters;
  handlers: AppserviceHandlers;
  logger: Logger;
  metrics: AppserviceMetrics;
  /** More concurrent transactions than this are refused with 429 (Synapse sends one at a time). */
  maxInFlight: number;
  /** Bounds each onEphemeral call, like every other handler call. */
  handlerTimeoutMs: number;
}

/**
 * What happens to a pushed transaction: it is recorded in the inbox (one durable write,
 * shared with whatever else is written at the time), then answered; its items go to the
 * lanes, which handle them afterwards. A transaction id recorded before is a no-op, also
 * after a restart; dedupe is by id, never by body. The homeserver gets a 5xx only when the
 * transaction cannot be recorded (store down), and a 503 while the inbox is full.
 */
export class TransactionProcessor {
  private readonly inFlight = new Map<string, Promise<TransactionOutcome>>();
  private started: Promise<void> | undefined;
  /** Ephemeral batches handed over and not yet settled (bounded; see `ephemeral`). */
  private ephemeralQueue: Promise<void> = Promise.resolve();
  private ephemeralWaiting = 0;
  /** Dead letters queued for a retry and not over yet. */
  private readonly retrying = new Set<string>();

  constructor(private readonly o: TransactionProcessorOptions) {}

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Opens the inbox and queues what a previous run left unhandled, and the dead letters an
   * operator asked to retry while the bridge was stopped. Once; a failure (store down) is
   * tried again by the next call. Called at listen, and by the first transaction otherwise.
   */
  start(): Promise<void> {
    return (this.started ??= this.resume().catch((err: unknown) => {
      this.started = undefined;
      throw err;
    }));
  }

  /**
   * Records a validated transaction. Resolves "recorded" when this call (or the one in flight
   * it joined) recorded it, "duplicate" when it was recorded before; rejects when it cannot
   * be recorded (the homeserver must retry).
   */
  async process(
    txnId: string,
    txn: ParsedTransaction,
  ): Promise<{ outcome: TransactionOutcome; joined: boolean }> {
    const running = this.inFlight.get(txnId);
    if (running) {
      this.o.logger.debug({ transactionId: txnId }, "joining the attempt in flight");
      return { outcome: await running, joined: true };
    }
    if (this.inFlight.size >= this.o.maxInFlight) {
      throw new MatrixHttpError(429, "M_LIMIT_EXCEEDED", "too many transactions in flight; retry later");
    }
    const attempt = this.record(txnId, txn);
    this.inFlight.set(txnId, attempt);
    try {
      return { outcome: await attempt, joined: false };
    } finally {
      this.inFlight.delete(txnId);
    }
  }

  /** Resolves once every transaction in flight has settled. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
    await this.ephemeralQueue;
  }

  /**
   * Sends a dead letter through its lane again; false if there is none with that id. A
   * letter already queued for a retry is not queued twice.
   */
  async retryDeadLetter(id: string): Promise<boolean> {
    const letter = await this.o.deadLetters.get(id);
    if (!letter) return false;
    this.retryLetter(letter);
    return true;
  }

  private retryLetter(letter: DeadLetter): void {
    if (this.retrying.has(letter.id)) return;
    this.retrying.add(letter.id);
    this.o.lanes.enqueue(
      new RetriedLetter(this.o.handlers, this.o.deadLetters, letter, () => this.retrying.delete(letter.id)),
    );
  }

  private async record(txnId: string, txn: ParsedTransaction): Promise<TransactionOutcome> {
    await this.start();
    const { inbox, logger, metrics } = this.o;
    // A replay of a recorded transaction is answered at once, even while the inbox is full.
    if (inbox.isRecorded(txnId)) return "duplicate";
    if (inbox.isFull(txn.events.length)) {
      metrics.inboxFull.inc();
      logger.warn(
        { transactionId: txnId, pending: inbox.pendingItems },
        "the inbox is full: refusing the transaction (503) so the homeserver keeps it",
      );
      throw new MatrixHttpError(503, "M_LIMIT_EXCEEDED", "the bridge's inbox is full; retry later", {
        "Retry-After": "5",
      });
    }
    // Only typing, receipts or presence (most transactions of a quiet bridge): nothing to
    // record, and handing them over twice on a replay is harmless.
    const recordable = txn.events.length > 0 || txn.toDevice.length > 0 || txn.deviceLists || txn.keyCounts;
    const entry = recordable ? await inbox.record(txnId, txn) : null;
    if (entry === undefined) {
      logger.debug({ transactionId: txnId }, "transaction recorded before; no-op");
      return "duplicate";
    }
    if (entry) this.enqueue(entry);
    // Best effort: handed over after the record, never stored.
    if (txn.ephemeral.length > 0) this.ephemeral(txnId, txn);
    return "recorded";
  }

  private enqueue(entry: InboxTransaction): void {
    entry.handled.forEach((handled, i) => {
      if (!handled) this.o.lanes.enqueue(new InboxWork(this.o.handlers, this.o.inbox, entry, i));
    });
  }

  /**
   * Hands ephemeral events over in order, one batch at a time, without holding the answer.
   * At most 1 000 batches wait; past that they are dropped (typing and receipts go stale
   * anyway), and counted.
   */
  private ephemeral(txnId: string, txn: ParsedTransaction): void {
    const onEphemeral = this.o.handlers.onEphemeral?.bind(this.o.handlers);
    if (!onEphemeral) return;
    if (this.ephemeralWaiting >= 1_000) {
      this.o.metrics.countEvents("ephemeral_dropped", txn.ephemeral.length);
      return;
    }
    this.ephemeralWaiting++;
    const log = this.o.logger.child({ transactionId: txnId, kind: "ephemeral" });
    // Bounded like every handler call: one hung call must not hold back later typing and
    // receipts, nor the drain at shutdown.
    const call = () =>
      withTimeout("onEphemeral", this.o.handlerTimeoutMs, (signal) =>
        onEphemeral(txn.ephemeral, {
          transactionId: txnId,
          log,
          get signal() {
            return signal();
          },
        }),
      );
    this.ephemeralQueue = this.ephemeralQueue
      .then(call)
      .then(
        () => this.o.metrics.countEvents("ephemeral", txn.ephemeral.length),
        (err: unknown) => log.warn({ err }, "ephemeral events not handled (best effort, not retried)"),
      )
      .finally(() => this.ephemeralWaiting--);
  }

  private async resume(): Promise<void> {
    const pending = await this.o.inbox.open();
    for (const entry of pending) this.enqueue(entry);
    if (pending.length > 0)
      this.o.logger.info(
        { transactions: pending.length, items: this.o.inbox.pendingItems },
        "resuming items recorded before the last stop",
      );
    let retried = 0;
    for (const letter of await this.o.deadLetters.list()) {
      if (!letter.retryRequested) continue;
      this.retryLetter(letter);
      retried++;
    }
    if (retried > 0) this.o.logger.info({ deadLetters: retried }, "retrying dead letters as asked");
  }
}
