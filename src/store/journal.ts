import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { KeyValue, Store } from "./store.js";

/** How many entries each journal keeps before the oldest are forgotten. */
export interface JournalRetention {
  /** Committed transaction ids remembered (default 10 000). */
  transactions?: number;
  /** Handled event ids remembered (default 100 000). */
  events?: number;
}

export const DEFAULT_JOURNAL_RETENTION: Required<JournalRetention> = {
  transactions: 10_000,
  events: 100_000,
};

/**
 * The durable record of what the homeserver pushed and the bridge handled, kept in two
 * namespaces of a Store ("journal-txn" and "journal-event"):
 * - a transaction id is committed once every event of that transaction was handled; a
 *   committed id is answered as a no-op, also after a restart;
 * - an event id (or another per-transaction item, see `markHandled`) is recorded right after
 *   its handler succeeded, so a retry of a partly failed transaction skips it.
 *
 * Retention is bounded by count on every backend: each journal is a ring of `capacity`
 * slots, and adding an entry evicts the one that took its slot `capacity` adds earlier
 * (after a restart, up to capacity/16 adds earlier, at most 64). Changing a capacity takes
 * effect gradually (entries may be evicted earlier or later once).
 *
 * One bridge process owns a journal at a time: two processes writing the same journal would
 * overwrite each other's ring positions (entries could be forgotten early, never invented).
 */
export class TransactionJournal {
  private readonly transactions: BoundedSet;
  private readonly handled: BoundedSet;

  constructor(store: Store, retention: JournalRetention = {}) {
    const transactions = retention.transactions ?? DEFAULT_JOURNAL_RETENTION.transactions;
    const events = retention.events ?? DEFAULT_JOURNAL_RETENTION.events;
    this.transactions = new BoundedSet(store.namespace("journal-txn"), "journal.transactions", transactions);
    this.handled = new BoundedSet(store.namespace("journal-event"), "journal.events", events);
  }

  /** True if this transaction id was committed (within retention). */
  isCommitted(txnId: string): Promise<boolean> {
    return this.transactions.has(txnId);
  }

  /** Records a transaction id as committed. Call only once all of its events were handled. */
  commit(txnId: string): Promise<void> {
    return this.transactions.add(txnId);
  }

  /** True if this item (an event id, or a key made by `extrasKey`) was recorded as handled. */
  isHandled(id: string): Promise<boolean> {
    return this.handled.has(id);
  }

  /** Which of these items were recorded as handled; one store round trip. */
  async handledAmong(ids: readonly string[]): Promise<Set<string>> {
    const flags = await this.handled.hasMany(ids);
    return new Set(ids.filter((_, i) => flags[i]));
  }

  /**
   * True if this process recorded the item as handled recently. Pure, no I/O: used to skip
   * an event that a concurrent transaction handled after `handledAmong` was asked.
   */
  wasHandledRecently(id: string): boolean {
    return this.handled.knownRecently(id);
  }

  /** Records an item as handled. Resolves once the record is durable. */
  markHandled(id: string): Promise<void> {
    return this.handled.add(id);
  }

  /**
   * The handled-journal key for a transaction's data that has no event id (ephemeral
   * events, to-device messages, device lists, key counts). Never collides with an event id.
   */
  static extrasKey(txnId: string, kind: string): string {
    return `\u0000${kind}\u0000${txnId}`;
  }
}

/**
 * How many ring positions are reserved per write of the head counter: at most 64, and at
 * most 1/16 of the capacity, so a restart (which resumes at the reservation) can shorten the
 * retention of older entries by no more than that.
 */
const headReserve = (capacity: number) => Math.max(1, Math.min(64, Math.floor(capacity / 16)));

/**
 * A persistent set of strings with bounded size, on one KeyValue namespace:
 * `m:<hash>` marks membership, `r:<slot>` says which member occupies a ring slot, and
 * `head` is the next sequence number reserved (written once per `headReserve` adds; after
 * a restart numbering resumes at the reservation, skipping at most that many slots).
 * Members are keyed by a SHA-256 of the string, so any string (unicode, slashes, 10 000
 * characters) is a safe key on every backend.
 */
class BoundedSet {
  private next = -1;
  private reserved = -1;
  /** Adds waiting for the next batch; each resolves once its batch is written. */
  private pending: Array<{ item: string; resolve: () => void; reject: (err: unknown) => void }> = [];
  /** The batch loop, while one runs: batches are written one at a time (ring positions in order). */
  private flushing: Promise<void> | undefined;
  private readonly recent: LRUCache<string, true>;

  constructor(
    private readonly kv: KeyValue<unknown>,
    private readonly label: string,
    private readonly capacity: number,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`${label} retention must be a positive integer, got ${String(capacity)}`);
    }
    this.recent = new LRUCache({ max: Math.min(capacity, 10_000) });
  }

  knownRecently(item: string): boolean {
    return this.recent.has(item);
  }

  async has(item: string): Promise<boolean> {
    if (this.recent.has(item)) return true;
    return (await this.kv.get(memberKey(item))) !== undefined;
  }

  async hasMany(items: readonly string[]): Promise<boolean[]> {
    const missing = items.filter((i) => !this.recent.has(i));
    const found = new Set<string>();
    if (missing.length > 0) {
      const values = await this.kv.getMany(missing.map(memberKey));
      missing.forEach((item, i) => {
        if (values[i] !== undefined) found.add(item);
      });
    }
    return items.map((i) => this.recent.has(i) || found.has(i));
  }

  /**
   * Adds an item; resolves once it is durable. Group commit: adds made while a batch is being
   * written (events of other rooms handled meanwhile) are written together in the next batch,
   * a few store round trips for the whole batch instead of four per item.
   */
  add(item: string): Promise<void> {
    if (this.recent.has(item)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    for (;;) {
      // Checked and cleared with no await in between: an add arriving after this sees no
      // flusher and starts one, so no add is ever left behind.
      if (this.pending.length === 0) {
        this.flushing = undefined;
        return;
      }
      const batch = this.pending.splice(0);
      try {
        await this.write([...new Set(batch.map((b) => b.item))].filter((i) => !this.recent.has(i)));
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
  }

  /** Writes one batch of new members into consecutive ring slots. */
  private async write(items: string[]): Promise<void> {
    if (items.length === 0) return;
    if (this.next < 0) {
      const head = await this.kv.get("head");
      this.next = typeof head === "number" && Number.isSafeInteger(head) && head >= 0 ? head : 0;
      this.reserved = this.next;
    }
    const first = this.next;
    if (first + items.length > this.reserved) {
      const reserved = first + items.length + headReserve(this.capacity);
      await this.kv.set("head", reserved);
      this.reserved = reserved;
    }
    // A batch larger than the ring keeps only its newest capacity items in slots.
    const slots = items.map((item, i) => ({ item, key: memberKey(item), seq: first + i }));
    const slotKeys = slots.map((s) => `r:${s.seq % this.capacity}`);
    const evicted = await this.kv.getMany(slotKeys);
    const keys = new Set(slots.map((s) => s.key));
    // Order matters for crashes, phase by phase: forget the old members before the slots name
    // the new ones, and write the memberships last, so a crash can leave a slot pointing at a
    // missing member (harmless) but never a member that no slot will ever evict.
    await Promise.all(
      [...new Set(evicted.filter((e): e is string => typeof e === "string" && !keys.has(e)))].map((e) =>
        this.kv.delete(e),
      ),
    );
    const lastBySlot = new Map<string, string>();
    slots.forEach((s, i) => lastBySlot.set(slotKeys[i]!, s.key));
    await Promise.all([...lastBySlot].map(([slot, key]) => this.kv.set(slot, key)));
    await Promise.all(slots.map((s) => this.kv.set(s.key, s.seq)));
    this.next = first + items.length;
    for (const s of slots) this.recent.set(s.item, true);
  }

  toString(): string {
    return this.label;
  }
}

function memberKey(item: string): string {
  return `m:${createHash("sha256").update(item, "utf8").digest("base64url")}`;
}
