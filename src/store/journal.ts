import { hash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { KeyValue, Store } from "./store.js";

/** How much each journal remembers before the oldest is forgotten. */
export interface JournalRetention {
  /** Transactions remembered in the store, with the items each had handled (default 10 000). */
  transactions?: number;
  /**
   * Handled event ids remembered in memory, so an event that another transaction carries
   * again is not handled twice (default 10 000: the newest 5 000 to 10 000 are remembered);
   * filled at start-up from the newest 100 transactions. Within a transaction (and its
   * retries, across restarts) every handled item is remembered in the store.
   */
  events?: number;
}

export const DEFAULT_JOURNAL_RETENTION: Required<JournalRetention> = {
  transactions: 10_000,
  events: 10_000,
};

/** What the journal knows of a transaction when an attempt begins. */
export interface TransactionState {
  /** It was committed: the attempt is a no-op. */
  readonly committed: boolean;
  /** Items (event ids, `extrasKey`s) an earlier attempt handled; skip them. */
  readonly handled: ReadonlySet<string>;
}

/** A transaction's record in the store, under its ring slot's key `s:<slot>`. */
interface TxnRecord {
  /** The transaction id (the ring slot names its digest). */
  id: string;
  /** Its position in the ring. */
  seq: number;
  /** Committed. */
  d?: true;
  /** Items handled (so far, while not committed). */
  h: string[];
}

/** A transaction an attempt (or a late handler success) is working on. */
interface OpenTxn {
  /** The digest of the transaction id: what the ring stores as the slot's owner. */
  key: string;
  /** Ring position, once its record was first written. */
  seq: number | undefined;
  handled: Set<string>;
  /** The handled items as the inside of a JSON array, in order: the record's `h`, kept ready. */
  handledJson: string;
  committed: boolean;
  /** begin() calls not yet ended. */
  refs: number;
}

/** One promise shared by everyone waiting for the same batch (one per batch, not per item). */
interface Batch {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const DONE: Promise<void> = Promise.resolve();

/**
 * The durable record of what the homeserver pushed and the bridge handled, one record per
 * transaction in the store namespace "journal":
 * - while a transaction is handled, its record lists the items handled so far (each one
 *   durable before `markHandled` resolves), so a retry, even after a restart, skips them;
 * - once every item was handled it is committed, and replays are answered as no-ops.
 *
 * Writes are group-committed: the records changed while one batch is written (events of
 * other rooms, other transactions) go together in the next, one store write per batch
 * whatever its size (two while it still deletes records of the earlier layout).
 *
 * Retention is bounded by count on every backend: records sit in a ring of `transactions`
 * slots, and a new transaction takes the slot of the one `transactions` transactions older
 * (after a restart, up to transactions/16 slots earlier, at most 64), skipping slots whose
 * transaction is still open. A slot is two keys written in place: `r:<slot>`, the owner's
 * digest, and `s:<slot>`, its record. Rewriting the same keys is what keeps a write cheap:
 * on sqlite, records under per-transaction keys made every new transaction an insert and a
 * delete at random places in the key index, three times the cost. The ring's slot owners are
 * read into memory before the first transaction (one read of `transactions` keys); a
 * transaction id that owns no slot then needs no read at all.
 *
 * One bridge process owns a journal at a time: two processes writing the same journal
 * would overwrite each other's ring positions (entries could be forgotten early, never
 * invented).
 */
export class TransactionJournal {
  private readonly kv: KeyValue<unknown>;
  private readonly capacity: number;
  private readonly open = new Map<string, OpenTxn>();
  private readonly committedRecently: LRUCache<string, true>;
  private readonly handledRecently: RecentItems;
  /** Owner (transaction id digest) of each ring slot; loaded before the first transaction. */
  private ring: Array<string | undefined> | undefined;
  /** The slot of each owner: a digest not in here has no record, so needs no read. */
  private readonly owners = new Map<string, number>();
  /**
   * Slots whose record is still under the earlier layout's key `t:<digest>` (a journal
   * written before records moved into their slots); deleted when the slot is taken.
   */
  private readonly legacy = new Set<number>();
  private next = 0;
  private reserved = 0;
  /** Transactions changed since the batch being written, and the batch that will write them. */
  private pending = new Set<string>();
  private nextBatch: Batch | undefined;
  private flushing: Promise<void> | undefined;
  /** The transactions of the batch being written. */
  private writing = new Set<string>();
  private warming: Promise<void> | undefined;

  constructor(store: Store, retention: JournalRetention = {}) {
    this.capacity = positiveInteger(
      "journal.transactions",
      retention.transactions ?? DEFAULT_JOURNAL_RETENTION.transactions,
    );
    const events = positiveInteger("journal.events", retention.events ?? DEFAULT_JOURNAL_RETENTION.events);
    this.kv = store.namespace("journal");
    this.committedRecently = new LRUCache({ max: Math.min(this.capacity, 1_000) });
    this.handledRecently = new RecentItems(events);
  }

  /**
   * Starts an attempt at a transaction: one store read (none for a transaction this process
   * committed recently). Every `begin` must be followed by one `end`.
   */
  async begin(txnId: string): Promise<TransactionState> {
    // A failed warm-up (store down) is tried again by the next transaction.
    await (this.warming ??= this.warm().catch((err: unknown) => {
      this.warming = undefined;
      throw err;
    }));
    if (this.committedRecently.has(txnId)) return { committed: true, handled: new Set() };
    const entry = await this.acquire(txnId);
    return { committed: entry.committed, handled: new Set(entry.handled) };
  }

  /** Ends an attempt begun with `begin`; what it recorded stays recorded. */
  end(txnId: string): void {
    const entry = this.open.get(txnId);
    if (!entry) return;
    entry.refs--;
    // Kept while a batch is to be written or being written: a retry that begins meanwhile
    // must see the items in it, not read the record before the write lands.
    if (entry.refs <= 0 && !this.pending.has(txnId) && !this.writing.has(txnId)) this.open.delete(txnId);
  }

  /**
   * Records an item of a transaction as handled; resolves once that is durable. Also works
   * after the attempt ended (a handler that succeeded after its timeout). While the attempt
   * is open this does no I/O of its own: the item joins the next batch, whose one promise
   * every item in it shares (the per-event hot path allocates nothing else).
   */
  markHandled(txnId: string, item: string): Promise<void> {
    this.handledRecently.add(item);
    const entry = this.open.get(txnId);
    if (!entry) return this.markLate(txnId, item);
    if (entry.committed || !addHandled(entry, item)) return DONE;
    return this.schedule(txnId);
  }

  /** markHandled for a transaction no attempt has open: reads its record first. */
  private async markLate(txnId: string, item: string): Promise<void> {
    const entry = await this.acquire(txnId);
    try {
      if (entry.committed || !addHandled(entry, item)) return;
      await this.schedule(txnId);
    } finally {
      this.end(txnId);
    }
  }

  /** Records a transaction as committed. Call only once all of its items were handled. */
  async commit(txnId: string): Promise<void> {
    const opened = this.open.get(txnId);
    const entry = opened ?? (await this.acquire(txnId));
    try {
      if (entry.committed) return;
      entry.committed = true;
      await this.schedule(txnId);
      this.committedRecently.set(txnId, true);
    } finally {
      if (!opened) this.end(txnId);
    }
  }

  /** True if this transaction id was committed (within retention). One read at most. */
  async isCommitted(txnId: string): Promise<boolean> {
    if (this.committedRecently.has(txnId)) return true;
    const open = this.open.get(txnId);
    if (open) return open.committed;
    return (await this.read(digest(txnId), txnId))?.d === true;
  }

  /**
   * True if this process handled the item recently (any transaction). Pure, no I/O: used to
   * skip an event that another transaction handled meanwhile.
   */
  wasHandledRecently(item: string): boolean {
    return this.handledRecently.has(item);
  }

  /**
   * The journal key for a transaction's data that has no event id (ephemeral events,
   * to-device messages, device lists, key counts). Never collides with an event id.
   */
  static extrasKey(txnId: string, kind: string): string {
    return `\u0000${kind}\u0000${txnId}`;
  }

  /**
   * The open entry of a transaction, read from the store if no attempt has it open; a
   * reference is taken for the caller (given back with `end`).
   */
  private async acquire(txnId: string): Promise<OpenTxn> {
    let entry = this.open.get(txnId);
    if (!entry) {
      const key = digest(txnId);
      const record = await this.read(key, txnId);
      // A concurrent call for the same id may have opened it while this one read.
      entry = this.open.get(txnId) ?? {
        key,
        seq: record?.seq,
        handled: new Set(record?.h ?? []),
        handledJson: record ? JSON.stringify(record.h).slice(1, -1) : "",
        committed: record?.d === true,
        refs: 0,
      };
      this.open.set(txnId, entry);
    }
    entry.refs++;
    return entry;
  }

  private async read(key: string, txnId: string): Promise<TxnRecord | undefined> {
    await this.loadRing();
    const slot = this.owners.get(key);
    if (slot === undefined) return undefined;
    const record = parseRecord(await this.kv.get(this.legacy.has(slot) ? `t:${key}` : `s:${slot}`));
    return record && record.id === txnId ? record : undefined;
  }

  /** Resolves once a batch holding the transaction's current state was written. */
  private schedule(txnId: string): Promise<void> {
    this.pending.add(txnId);
    // Started on the next turn of the event loop, so that everything handled in this one
    // (other rooms' events, a commit right after) shares the first batch.
    this.flushing ??= new Promise<void>((r) => setImmediate(r)).then(() => this.flush());
    return (this.nextBatch ??= newBatch()).promise;
  }

  private async flush(): Promise<void> {
    for (;;) {
      // Checked and swapped with no await in between: a schedule() after this sees no
      // flusher and starts one, so no change is ever left behind.
      if (this.pending.size === 0) {
        this.flushing = undefined;
        return;
      }
      const batch = this.pending;
      const waiting = this.nextBatch!;
      this.pending = new Set();
      this.nextBatch = undefined;
      this.writing = batch;
      try {
        await this.write([...batch]);
        waiting.resolve();
      } catch (err) {
        waiting.reject(err);
      }
      this.writing = new Set();
      for (const txnId of batch) {
        const entry = this.open.get(txnId);
        if (entry && entry.refs <= 0 && !this.pending.has(txnId)) this.open.delete(txnId);
      }
    }
  }

  /** Writes the records of these transactions, giving ring slots to the new ones. */
  private async write(txnIds: string[]): Promise<void> {
    const ring = await this.loadRing();
    const entries: Array<[string, unknown]> = [];
    const legacyRecords: string[] = [];
    /** Slots taken (or moved off the earlier layout) in this batch, by whom. */
    const taken = new Map<number, OpenTxn>();
    const assigned: OpenTxn[] = [];
    const openKeys = new Set<string>();
    for (const entry of this.open.values()) openKeys.add(entry.key);
    let next = this.next;
    for (const txnId of txnIds) {
      const entry = this.open.get(txnId)!;
      let seq = entry.seq;
      // A record read while this slot was being given away (a retry of a transaction no attempt
      // had open) must not overwrite the slot's new owner: it takes a slot of its own instead.
      if (seq !== undefined && ring[seq % this.capacity] !== entry.key) seq = undefined;
      if (seq === undefined) {
        seq = this.freeSlot(next, ring, openKeys, taken);
        next = seq + 1;
        assigned.push(entry);
      }
      const slot = seq % this.capacity;
      if (entry.seq !== seq || this.legacy.has(slot)) {
        // A new owner, or this owner's record moving from `t:<digest>` into its slot.
        taken.set(slot, entry);
        if (this.legacy.has(slot)) legacyRecords.push(`t:${ring[slot]!}`);
        entries.push([`r:${slot}`, entry.key]);
      }
      // A TxnRecord as one JSON string: keyv's serializer walks an object value element by
      // element in JavaScript, which for 100 event ids costs more than JSON.stringify; and the
      // ids are serialised once, as they are handled, not again in every write of the record.
      const done = entry.committed ? ',"d":true' : "";
      const json = `{"id":${JSON.stringify(txnId)},"seq":${seq},"h":[${entry.handledJson}]${done}}`;
      entries.push([`s:${slot}`, json]);
      entry.seq = seq; // provisional until the write lands
    }
    let reserved = this.reserved;
    if (next > reserved) {
      // In the same atomic write as the slots it covers: the head never lags a used slot.
      reserved = next + headReserve(this.capacity);
      entries.push(["head", reserved]);
    }
    try {
      // Both in one round trip. On sqlite and Redis (one connection) the delete runs first.
      await Promise.all([
        legacyRecords.length > 0 ? this.kv.deleteMany(legacyRecords) : undefined,
        this.kv.setMany(entries),
      ]);
    } catch (err) {
      for (const entry of assigned) entry.seq = undefined;
      throw err;
    }
    this.next = next;
    this.reserved = reserved;
    for (const [slot, entry] of taken) {
      const owner = ring[slot];
      if (owner !== undefined && this.owners.get(owner) === slot) this.owners.delete(owner);
      this.legacy.delete(slot);
      ring[slot] = entry.key;
      this.owners.set(entry.key, slot);
    }
  }

  /**
   * The first ring position from `next` on whose slot no open transaction owns and none in
   * this batch took. Throws if every slot is held: retention is then smaller than the number
   * of transactions open at once.
   */
  private freeSlot(
    next: number,
    ring: ReadonlyArray<string | undefined>,
    openKeys: ReadonlySet<string>,
    taken: ReadonlyMap<number, OpenTxn>,
  ): number {
    for (let seq = next; seq < next + this.capacity; seq++) {
      const slot = seq % this.capacity;
      const owner = ring[slot];
      if (!taken.has(slot) && (owner === undefined || !openKeys.has(owner))) return seq;
    }
    throw new Error(
      `journal: all ${this.capacity} ring slots belong to open transactions; ` +
        "retention.transactions must be larger than the number of transactions open at once",
    );
  }

  /**
   * Before the first transaction after a start: loads the ring, and remembers the items of
   * the newest transactions, so that an event handled just before a restart is skipped when
   * a different transaction carries it again.
   */
  private async warm(): Promise<void> {
    const ring = await this.loadRing();
    const keys = new Set<string>();
    for (
      let seq = this.next - 1;
      seq >= Math.max(0, this.next - WARM_SLOTS) && keys.size < this.capacity;
      seq--
    ) {
      const slot = seq % this.capacity;
      const owner = ring[slot];
      if (owner !== undefined) keys.add(this.legacy.has(slot) ? `t:${owner}` : `s:${slot}`);
    }
    if (keys.size === 0) return;
    const records = (await this.kv.getMany([...keys])).map(parseRecord);
    for (const record of records.reverse())
      for (const item of record?.h ?? []) this.handledRecently.add(item);
  }

  private async loadRing(): Promise<Array<string | undefined>> {
    if (this.ring) return this.ring;
    const head = await this.kv.get("head");
    const slots = await this.kv.getMany(Array.from({ length: this.capacity }, (_, i) => `r:${i}`));
    if (this.ring) return this.ring;
    const ring: Array<string | undefined> = [];
    slots.forEach((value, slot) => {
      if (typeof value !== "string") return void ring.push(undefined);
      // The earlier layout named the record key (`t:<digest>`); this one names the digest.
      const legacy = value.startsWith("t:");
      const owner = legacy ? value.slice(2) : value;
      ring.push(owner);
      this.owners.set(owner, slot);
      if (legacy) this.legacy.add(slot);
    });
    this.ring = ring;
    this.next = this.reserved =
      typeof head === "number" && Number.isSafeInteger(head) && head >= 0 ? head : 0;
    return this.ring;
  }
}

/**
 * A record as read from the store: a JSON string, or (written before records were strings)
 * the object itself. Anything else reads as no record.
 */
function parseRecord(raw: unknown): TxnRecord | undefined {
  let value = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw) as unknown;
    } catch {
      return undefined;
    }
  }
  const r = value as Partial<TxnRecord> | null | undefined;
  return r && typeof r.id === "string" && typeof r.seq === "number" && Array.isArray(r.h)
    ? (r as TxnRecord)
    : undefined;
}

/**
 * How many ring positions are reserved per write of the head counter: at most 64, and at
 * most 1/16 of the capacity, so a restart (which resumes at the reservation) can shorten the
 * retention of older entries by no more than that.
 */
const headReserve = (capacity: number) => Math.max(1, Math.min(64, Math.floor(capacity / 16)));

/** How many of the newest ring positions `warm` reads (past the head reservation, at most 64). */
const WARM_SLOTS = 100 + 64;

/** Adds a handled item to an open transaction; false if it was there already. */
function addHandled(entry: OpenTxn, item: string): boolean {
  const size = entry.handled.size;
  entry.handled.add(item);
  if (entry.handled.size === size) return false;
  const json = JSON.stringify(item);
  entry.handledJson = size === 0 ? json : `${entry.handledJson},${json}`;
  return true;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Whoever waits sees a failure; nobody waiting must not make it an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * A bounded set of recently handled items: two generations of Sets, items added to the
 * newer; when it holds half the bound, it becomes the older and the oldest generation is
 * dropped whole. So between `max/2` and `max` of the newest items are remembered. Nothing is
 * ever deleted from a Set: deleting leaves holes that V8 compacts by rehashing the whole
 * table, a cost paid on the per-event path.
 */
class RecentItems {
  private newer = new Set<string>();
  private older = new Set<string>();
  private readonly half: number;

  constructor(max: number) {
    this.half = Math.max(1, Math.ceil(max / 2));
  }

  has(item: string): boolean {
    return this.newer.has(item) || this.older.has(item);
  }

  add(item: string): void {
    const size = this.newer.size;
    this.newer.add(item); // one lookup: whether it was there shows in the size
    if (this.newer.size !== size && this.newer.size >= this.half) {
      this.older = this.newer;
      this.newer = new Set();
    }
  }
}

/** Any transaction id (unicode, slashes, 10 000 characters) as a short, safe string. */
function digest(txnId: string): string {
  return hash("sha256", txnId, "base64url");
}

function positiveInteger(label: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${label} retention must be a positive integer, got ${String(value)}`);
  }
  return value;
}
