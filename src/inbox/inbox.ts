import { hash } from "node:crypto";
import type { DeviceKeyCounts, DeviceLists, MatrixEvent, ToDeviceMessage } from "../matrix/events.js";
import type { KeyValue, Store } from "../store/store.js";

/** One unit of work of a recorded transaction: a room event, or one kind of data without ids. */
export type InboxItem =
  | { kind: "event"; event: MatrixEvent }
  | { kind: "to_device"; messages: ToDeviceMessage[] }
  | { kind: "device_lists"; lists: DeviceLists }
  | { kind: "key_counts"; counts: DeviceKeyCounts };

/** What a transaction carries that the inbox records (ephemeral events are not recorded). */
export interface RecordableTransaction {
  events: readonly MatrixEvent[];
  toDevice: readonly ToDeviceMessage[];
  deviceLists: DeviceLists | undefined;
  keyCounts: DeviceKeyCounts | undefined;
}

export interface InboxOptions {
  /** Transactions remembered (txnId dedupe) in a ring of this many slots (default 10 000). */
  transactions?: number;
  /**
   * Event ids remembered in memory so that an event another transaction carries again is not
   * recorded twice (default 10 000: the newest 5 000 to 10 000 are remembered).
   */
  events?: number;
  /**
   * Items recorded and not yet handled before the inbox counts as full (default 10 000):
   * past it `isFull` says so and the homeserver is answered 503, so it keeps the backlog.
   */
  maxPendingItems?: number;
  /**
   * Events carrying a secret (a password typed in a login conversation, a token handed over):
   * they are handled as pushed but recorded without their content (see WITHHELD_KEY), so the
   * secret never reaches the store. Must not do I/O: it runs for every event recorded.
   */
  withhold?: (event: MatrixEvent) => boolean;
}

export const DEFAULT_INBOX_OPTIONS: Required<Omit<InboxOptions, "withhold">> = {
  transactions: 10_000,
  events: 10_000,
  maxPendingItems: 10_000,
};

/**
 * The content key an event recorded without its content carries (InboxOptions.withhold).
 * Handled after a restart, such an event has only this: the handler should ask again.
 */
export const WITHHELD_KEY = "org.matrix.bridgekit.withheld";

/** An event item handled as pushed but written to the store as a copy without its content. */
function withheldItem(event: MatrixEvent): InboxItem {
  const stored: MatrixEvent = { ...event, content: { [WITHHELD_KEY]: true } };
  return { kind: "event", event, toJSON: () => ({ kind: "event", event: stored }) } as InboxItem;
}

/**
 * A recorded transaction whose items are being handled. `items` are the ones recorded (after
 * dedupe), in the transaction's order; `handled[i]` is true once item i is handled (or
 * dead-lettered) and that is recorded or about to be.
 */
export class InboxTransaction {
  /** Items not handled yet. */
  remaining: number;
  readonly handled: boolean[];
  /** `handled` changed since the last write. */
  handledDirty = false;
  /** Every item is handled: the next write marks the transaction done. */
  get done(): boolean {
    return this.remaining === 0;
  }

  constructor(
    readonly txnId: string,
    /** Digest of the transaction id: the ring slot's owner. */
    readonly key: string,
    readonly items: readonly InboxItem[],
    /** Ring position; assigned by the first write. */
    public seq: number | undefined,
    handled?: boolean[],
  ) {
    this.handled = handled ?? items.map(() => false);
    this.remaining = this.handled.filter((h) => !h).length;
  }
}

/** One promise shared by everyone waiting for the same batch. */
interface Batch {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The durable inbox: every transaction the homeserver pushes is recorded here, with its
 * items, before it is acknowledged; items are then handled from it, and each handled item is
 * recorded, so that after a crash only what was not handled is handled again.
 *
 * Layout (store namespace "inbox"), a ring of `transactions` slots, each three keys rewritten
 * in place (rewriting is what keeps writes cheap on sqlite; see docs/store.md):
 * - `r:<slot>`: the owner's transaction id digest, with a trailing `!` while it is pending
 *   (not every item handled). All of them are read once at open: txnId dedupe is then a
 *   memory lookup, and the pending slots are known without reading the others.
 * - `e:<slot>`: `{"seq":n,"id":txnId,"x":[items]}` while pending; `{"seq":n,"i":[event ids]}` once done
 *   (the ids warm the event-id dedupe after a restart).
 * - `h:<slot>`: `{"seq":n,"h":[indices handled]}` while pending; deleted once done (a stale
 *   one left by a crash names another seq and is ignored).
 * - `head`: the next ring position, reserved ahead in steps (see headReserve).
 *
 * Writes are group-committed: whatever changed while one batch was written (new
 * transactions, handled marks of every room, transactions done) goes in the next one, one
 * `setMany` whatever its size. A new transaction takes the next slot whose owner is done, so
 * pending transactions are never overwritten; `isFull` keeps enough slots free.
 *
 * One bridge process owns an inbox at a time.
 */
export class Inbox {
  private readonly kv: KeyValue<unknown>;
  private readonly capacity: number;
  private readonly maxPending: number;
  private readonly recent: RecentItems;
  private readonly withhold: ((event: MatrixEvent) => boolean) | undefined;
  /** Owner digest of each slot (undefined: free). */
  private ring: Array<string | undefined> = [];
  private readonly owners = new Map<string, number>();
  /** Slots whose owner is pending: never given to a new transaction. */
  private readonly pendingSlots = new Set<number>();
  private next = 0;
  private reserved = 0;
  private opened: Promise<InboxTransaction[]> | undefined;
  /** Transactions being recorded, by id: a concurrent duplicate waits for the first. */
  private readonly recording = new Map<string, Promise<unknown>>();
  private pendingItemCount = 0;
  private pendingTxnCount = 0;
  /** Changed since the batch being written, and the batch that will write them. */
  private dirty = new Set<InboxTransaction>();
  private nextBatch: Batch | undefined;
  private flushing: Promise<void> | undefined;

  constructor(store: Store, options: InboxOptions = {}) {
    const o = { ...DEFAULT_INBOX_OPTIONS, ...options };
    this.capacity = positiveInteger("inbox.transactions", o.transactions);
    this.maxPending = positiveInteger("inbox.maxPendingItems", o.maxPendingItems);
    this.recent = new RecentItems(positiveInteger("inbox.events", o.events));
    this.kv = store.namespace("inbox");
    this.withhold = options.withhold;
  }

  /** Items recorded and not yet handled. */
  get pendingItems(): number {
    return this.pendingItemCount;
  }

  /** Transactions with items not yet handled. */
  get pendingTransactions(): number {
    return this.pendingTxnCount;
  }

  /** True once this transaction id was durably recorded (valid after `open`). */
  isRecorded(txnId: string): boolean {
    return this.owners.has(digest(txnId));
  }

  /**
   * True when recording `incoming` more items would pass the bound (or leave too few ring
   * slots): the caller should refuse the transaction so the homeserver keeps it. An empty
   * inbox is never full, so one transaction larger than the bound still gets in.
   */
  isFull(incoming: number): boolean {
    if (this.pendingItemCount === 0) return false;
    return this.pendingItemCount + incoming > this.maxPending || this.pendingTxnCount * 2 >= this.capacity;
  }

  /**
   * Reads the ring (once; later calls share the first's answer) and returns the transactions
   * still pending from before, oldest first, with what was handled of them. A failed open
   * (store down) is tried again by the next call.
   */
  open(): Promise<InboxTransaction[]> {
    return (this.opened ??= this.load().catch((err: unknown) => {
      this.opened = undefined;
      throw err;
    }));
  }

  /**
   * Records a transaction's items; resolves once that is durable, with the transaction to
   * handle, or with undefined when this id was recorded before (a replay: a no-op). Events
   * recorded recently under another transaction id are left out (dedupe by event id).
   */
  async record(txnId: string, txn: RecordableTransaction): Promise<InboxTransaction | undefined> {
    await this.open();
    const key = digest(txnId);
    const running = this.recording.get(txnId);
    if (running) {
      await running; // shares the first attempt's failure, if it fails
      return undefined;
    }
    if (this.owners.has(key)) return undefined;
    const entry = new InboxTransaction(txnId, key, this.newItems(txn), undefined);
    const written = this.schedule(entry);
    written.catch(() => {
      // Not recorded: a retry of this transaction must record these events again.
      for (const item of entry.items) if (item.kind === "event") this.recent.delete(item.event.event_id);
    });
    this.recording.set(txnId, written);
    this.pendingItemCount += entry.remaining;
    if (!entry.done) this.pendingTxnCount++;
    try {
      await written;
    } catch (err) {
      this.pendingItemCount -= entry.remaining;
      if (!entry.done) this.pendingTxnCount--;
      throw err;
    } finally {
      this.recording.delete(txnId);
    }
    return entry;
  }

  /**
   * Records item `index` of a recorded transaction as handled; resolves once that is
   * durable. Does no I/O of its own: it joins the next batch, whose one promise every item
   * in it shares.
   */
  markHandled(entry: InboxTransaction, index: number): Promise<void> {
    if (entry.handled[index]) return this.nextBatch?.promise ?? DONE;
    entry.handled[index] = true;
    entry.handledDirty = true;
    entry.remaining--;
    this.pendingItemCount--;
    if (entry.done) this.pendingTxnCount--;
    return this.schedule(entry);
  }

  /**
   * Writes a transaction's state again after a batch holding it failed (the store was down):
   * resolves once it is durable. Its handled marks stay in memory meanwhile.
   */
  rewrite(entry: InboxTransaction): Promise<void> {
    entry.handledDirty = true;
    return this.schedule(entry);
  }

  /** The items of a transaction not seen recently, each event once. */
  private newItems(txn: RecordableTransaction): InboxItem[] {
    const items: InboxItem[] = [];
    for (const event of txn.events) {
      if (this.recent.has(event.event_id)) continue;
      this.recent.add(event.event_id);
      items.push(this.withhold?.(event) ? withheldItem(event) : { kind: "event", event });
    }
    if (txn.toDevice.length > 0) items.push({ kind: "to_device", messages: [...txn.toDevice] });
    if (txn.deviceLists) items.push({ kind: "device_lists", lists: txn.deviceLists });
    if (txn.keyCounts) items.push({ kind: "key_counts", counts: txn.keyCounts });
    return items;
  }

  private schedule(entry: InboxTransaction): Promise<void> {
    this.dirty.add(entry);
    // Started on the next turn of the event loop, so that everything that changes in this
    // one (other rooms' marks, a transaction done right after) shares the batch.
    this.flushing ??= new Promise<void>((r) => setImmediate(r)).then(() => this.flush());
    return (this.nextBatch ??= newBatch()).promise;
  }

  private async flush(): Promise<void> {
    for (;;) {
      // Checked and swapped with no await in between: a schedule() after this sees no
      // flusher and starts one, so no change is ever left behind.
      if (this.dirty.size === 0) {
        this.flushing = undefined;
        return;
      }
      const batch = this.dirty;
      const waiting = this.nextBatch!;
      this.dirty = new Set();
      this.nextBatch = undefined;
      try {
        await this.write(batch);
        waiting.resolve();
      } catch (err) {
        waiting.reject(err);
      }
    }
  }

  /** Writes the changed transactions: new records, handled marks, done records. */
  private async write(batch: ReadonlySet<InboxTransaction>): Promise<void> {
    const entries: Array<[string, unknown]> = [];
    const deletes: string[] = [];
    const taken = new Map<number, InboxTransaction>();
    let next = this.next;
    for (const entry of batch) {
      const isNew = entry.seq === undefined;
      if (isNew) {
        entry.seq = this.freeSlot(next, taken);
        next = entry.seq + 1;
        taken.set(entry.seq % this.capacity, entry);
      }
      const seq = entry.seq!;
      const slot = seq % this.capacity;
      if (entry.done) {
        entries.push([`r:${slot}`, entry.key], [`e:${slot}`, doneRecord(seq, entry.items)]);
        if (!isNew) deletes.push(`h:${slot}`);
      } else {
        if (isNew) {
          entries.push(
            [`r:${slot}`, `${entry.key}!`],
            [`e:${slot}`, pendingRecord(seq, entry.txnId, entry.items)],
          );
        }
        if (entry.handledDirty) entries.push([`h:${slot}`, handledRecord(seq, entry.handled)]);
      }
      entry.handledDirty = false;
    }
    let reserved = this.reserved;
    if (next > reserved) {
      // In the same atomic write as the slots it covers: the head never lags a used slot.
      reserved = next + headReserve(this.capacity);
      entries.push(["head", reserved]);
    }
    try {
      await this.kv.setMany(entries);
    } catch (err) {
      for (const entry of taken.values()) entry.seq = undefined;
      for (const entry of batch) entry.handledDirty = true; // written again by `rewrite`
      throw err;
    }
    this.next = next;
    this.reserved = reserved;
    for (const [slot, entry] of taken) {
      const owner = this.ring[slot];
      if (owner !== undefined && this.owners.get(owner) === slot) this.owners.delete(owner);
      this.ring[slot] = entry.key;
      this.owners.set(entry.key, slot);
    }
    for (const entry of batch) {
      const slot = entry.seq! % this.capacity;
      if (entry.done) this.pendingSlots.delete(slot);
      else this.pendingSlots.add(slot);
    }
    // Stale handled marks of done transactions: harmless if this fails (they name an old seq).
    if (deletes.length > 0) await this.kv.deleteMany(deletes).catch(() => undefined);
  }

  /** The first ring position from `next` on whose slot is neither pending nor taken in this batch. */
  private freeSlot(next: number, taken: ReadonlyMap<number, InboxTransaction>): number {
    for (let seq = next; seq < next + this.capacity; seq++) {
      const slot = seq % this.capacity;
      if (!taken.has(slot) && !this.pendingSlots.has(slot)) return seq;
    }
    throw new Error(
      `inbox: all ${this.capacity} ring slots hold pending transactions; ` +
        "inbox.transactions must be larger than twice the transactions pending at once",
    );
  }

  private async load(): Promise<InboxTransaction[]> {
    const head = await this.kv.get("head");
    const owners = await this.kv.getMany(Array.from({ length: this.capacity }, (_, i) => `r:${i}`));
    this.next = this.reserved =
      typeof head === "number" && Number.isSafeInteger(head) && head >= 0 ? head : 0;
    const pending: number[] = [];
    const pendingSet = new Set<number>();
    this.ring = owners.map((value, slot) => {
      if (typeof value !== "string" || value === "") return undefined;
      const owner = value.endsWith("!") ? value.slice(0, -1) : value;
      if (owner !== value) {
        pending.push(slot);
        pendingSet.add(slot);
      }
      this.owners.set(owner, slot);
      return owner;
    });
    // The newest slots' records warm the event-id dedupe; the pending ones are replayed.
    const newest: number[] = [];
    for (let seq = this.next - 1; seq >= Math.max(0, this.next - WARM_SLOTS); seq--) {
      const slot = seq % this.capacity;
      if (this.ring[slot] !== undefined && !pendingSet.has(slot)) newest.push(slot);
    }
    const records = await this.kv.getMany([
      ...[...newest, ...pending].map((s) => `e:${s}`),
      ...pending.map((s) => `h:${s}`),
    ]);
    for (const record of records.slice(0, newest.length).reverse()) {
      for (const id of parseRecord(record)?.i ?? []) this.recent.add(id);
    }
    const replay: InboxTransaction[] = [];
    pending.forEach((slot, n) => {
      const record = parseRecord(records[newest.length + n]);
      const marks = parseRecord(records[newest.length + pending.length + n]);
      // The owner and its items are written in one atomic write, so a pending owner always
      // has them; a slot without (a store edited by hand) has nothing to replay and is free.
      if (!record?.x) return;
      const handled = record.x.map(() => false);
      if (marks?.seq === record.seq) for (const i of marks.h ?? []) if (i < handled.length) handled[i] = true;
      for (const item of record.x) if (item.kind === "event") this.recent.add(item.event.event_id);
      const txnId = typeof record.id === "string" ? record.id : `(slot ${slot})`;
      const entry = new InboxTransaction(txnId, this.ring[slot]!, record.x, record.seq, handled);
      this.pendingSlots.add(slot);
      this.pendingItemCount += entry.remaining;
      this.pendingTxnCount++;
      replay.push(entry);
    });
    return replay.sort((a, b) => a.seq! - b.seq!);
  }
}

const DONE: Promise<void> = Promise.resolve();

/** How many of the newest ring positions `load` reads to warm the event-id dedupe. */
const WARM_SLOTS = 100 + 64;

/**
 * Ring positions reserved per write of the head counter: at most 64, and at most 1/16 of the
 * capacity, so a restart (which resumes at the reservation) skips no more than that.
 */
const headReserve = (capacity: number) => Math.max(1, Math.min(64, Math.floor(capacity / 16)));

// Records are written as JSON strings: keyv's serializer walks an object value element by
// element in JavaScript, which for 100 events costs more than JSON.stringify.
const pendingRecord = (seq: number, txnId: string, items: readonly InboxItem[]) =>
  `{"seq":${seq},"id":${JSON.stringify(txnId)},"x":${JSON.stringify(items)}}`;
const doneRecord = (seq: number, items: readonly InboxItem[]) =>
  `{"seq":${seq},"i":${JSON.stringify(items.flatMap((i) => (i.kind === "event" ? [i.event.event_id] : [])))}}`;
function handledRecord(seq: number, handled: readonly boolean[]): string {
  const indices: number[] = [];
  handled.forEach((h, i) => h && indices.push(i));
  return `{"seq":${seq},"h":[${indices.join(",")}]}`;
}

interface SlotRecord {
  seq: number;
  id?: string;
  x?: InboxItem[];
  i?: string[];
  h?: number[];
}

function parseRecord(raw: unknown): SlotRecord | undefined {
  if (typeof raw !== "string") return undefined;
  try {
    const value = JSON.parse(raw) as SlotRecord;
    return typeof value?.seq === "number" ? value : undefined;
  } catch {
    return undefined;
  }
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
 * A bounded set of recent items: two generations of Sets, items added to the newer; when it
 * holds half the bound, it becomes the older and the oldest generation is dropped whole. So
 * between `max/2` and `max` of the newest items are remembered. Nothing is deleted from a
 * Set: deleting leaves holes that V8 compacts by rehashing the whole table.
 */
export class RecentItems {
  private newer = new Set<string>();
  private older = new Set<string>();
  private readonly half: number;

  constructor(max: number) {
    this.half = Math.max(1, Math.ceil(max / 2));
  }

  has(item: string): boolean {
    return this.newer.has(item) || this.older.has(item);
  }

  /** Forgets an item (rare: a record that failed to be written). */
  delete(item: string): void {
    this.newer.delete(item);
    this.older.delete(item);
  }

  add(item: string): void {
    const size = this.newer.size;
    this.newer.add(item);
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
    throw new RangeError(`${label} must be a positive integer, got ${String(value)}`);
  }
  return value;
}
