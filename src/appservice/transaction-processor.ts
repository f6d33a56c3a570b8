import type { Logger } from "../common/logger.js";
import type { TransactionJournal } from "../store/journal.js";
import type { Dispatcher } from "./dispatcher.js";
import { MatrixHttpError } from "./errors.js";
import type { ParsedTransaction } from "./transaction-body.js";

/** How a transaction was answered. */
export type TransactionOutcome = "committed" | "duplicate";

/**
 * Deduplicates transactions by id (never by body): a committed id is a no-op, also after a
 * restart; a duplicate arriving while the first is in flight waits for it and shares its
 * outcome (the events run once). Commits the id only after every item was handled.
 */
export class TransactionProcessor {
  private readonly inFlight = new Map<string, Promise<TransactionOutcome>>();

  constructor(
    private readonly journal: TransactionJournal,
    private readonly dispatcher: Dispatcher,
    private readonly logger: Logger,
    /** More concurrent transactions than this are refused with 429 (Synapse sends one at a time). */
    private readonly maxInFlight: number,
  ) {}

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Processes a validated transaction. Resolves "committed" when this call (or the
   * in-flight call it joined) handled it, "duplicate" when it was committed before; rejects
   * when a handler or the journal failed (the homeserver must retry).
   */
  async process(
    txnId: string,
    txn: ParsedTransaction,
  ): Promise<{ outcome: TransactionOutcome; joined: boolean }> {
    const running = this.inFlight.get(txnId);
    if (running) {
      this.logger.debug({ transactionId: txnId }, "joining the attempt in flight");
      return { outcome: await running, joined: true };
    }
    if (this.inFlight.size >= this.maxInFlight) {
      throw new MatrixHttpError(429, "M_LIMIT_EXCEEDED", "too many transactions in flight; retry later");
    }
    const attempt = this.run(txnId, txn);
    this.inFlight.set(txnId, attempt);
    try {
      return { outcome: await attempt, joined: false };
    } finally {
      // Only this attempt's own entry: a later attempt of the same id must stay joinable.
      if (this.inFlight.get(txnId) === attempt) this.inFlight.delete(txnId);
    }
  }

  /** Resolves once every transaction in flight has settled. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private async run(txnId: string, txn: ParsedTransaction): Promise<TransactionOutcome> {
    const state = await this.journal.begin(txnId);
    try {
      if (state.committed) {
        this.logger.debug({ transactionId: txnId }, "transaction already committed; no-op");
        return "duplicate";
      }
      await this.dispatcher.dispatch(txnId, txn, state.handled);
      await this.journal.commit(txnId);
      return "committed";
    } finally {
      this.journal.end(txnId);
    }
  }
}
