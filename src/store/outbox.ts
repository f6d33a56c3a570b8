import { randomUUID } from "node:crypto";
import { KeyedLock } from "./keyed-lock.js";
import type { JsonValue } from "./json.js";
import type { KeyValue, Store } from "./store.js";

/** One queued send. */
export interface OutboxItem<T extends JsonValue = JsonValue> {
  /** Position in its room's queue: 0, 1, 2, … in enqueue order. */
  seq: number;
  /** The Matrix transaction id for this send, fixed at enqueue: every retry reuses it. */
  txnId: string;
  /** Date.now() at enqueue. */
  enqueuedAt: number;
  payload: T;
}

export interface OutboxOptions {
  /** Store namespace prefix (default "outbox"). */
  namespace?: string;
  /** Items a room may hold; enqueue rejects beyond it (default 10000). */
  maxPerRoom?: number;
}

/** Thrown by enqueue when a room's queue is full: the homeserver has been down too long. */
export class OutboxFullError extends Error {
  override readonly name = "OutboxFullError";
}

interface Cursor {
  /** The seq of the oldest item not yet acknowledged. */
  head: number;
  /** The seq the next enqueue gets. */
  tail: number;
}

/**
 * A durable FIFO per room key for remote -> Matrix sends. `enqueue` resolves once the item is
 * stored; the deliverer `peek`s the oldest item, sends it with the item's `txnId`, and `ack`s
 * it only after the homeserver accepted it. Strict order per room: only the oldest item can
 * be acknowledged. Crash safety: an item is stored before the cursor that makes it visible,
 * and acknowledged by deleting it before the cursor moves past it, so a crash between "sent"
 * and "ack" resends the same item with the same txnId (the homeserver deduplicates by
 * txnId), and nothing acknowledged by enqueue is ever lost. After a restart, `rooms()` lists
 * every room with items left. Single writer process assumed: two processes on one outbox
 * would both deliver.
 */
export class Outbox<T extends JsonValue = JsonValue> {
  private readonly items: KeyValue<OutboxItem<T>>;
  private readonly cursors: KeyValue<Cursor>;
  private readonly index: KeyValue<string[]>;
  private readonly lock = new KeyedLock();
  readonly maxPerRoom: number;

  constructor(store: Store, opts: OutboxOptions = {}) {
    const ns = opts.namespace ?? "outbox";
    this.maxPerRoom = opts.maxPerRoom ?? 10_000;
    if (!Number.isInteger(this.maxPerRoom) || this.maxPerRoom < 1)
      throw new TypeError(`Outbox maxPerRoom must be a positive integer, got ${opts.maxPerRoom}`);
    this.items = store.namespace(`${ns}.item`);
    this.cursors = store.namespace(`${ns}.cursor`);
    this.index = store.namespace(`${ns}.rooms`);
  }

  /**
   * Appends an item to the room's queue and resolves once it is stored, with its seq and
   * txnId. Rejects with OutboxFullError when the room already holds maxPerRoom items.
   */
  enqueue(roomKey: string, payload: T): Promise<OutboxItem<T>> {
    if (typeof roomKey !== "string" || roomKey === "")
      return Promise.reject(new TypeError("Outbox.enqueue: roomKey must be a non-empty string"));
    if (payload === undefined) return Promise.reject(new TypeError("Outbox.enqueue: payload is undefined"));
    return this.lock.run(roomKey, async () => {
      const cursor = (await this.cursors.get(roomKey)) ?? { head: 0, tail: 0 };
      if (cursor.tail - cursor.head >= this.maxPerRoom)
        throw new OutboxFullError(
          `outbox for ${roomKey} holds ${cursor.tail - cursor.head} items (maxPerRoom ${this.maxPerRoom}); not accepting more`,
        );
      if (cursor.tail === cursor.head) await this.addRoom(roomKey); // listed before it has items
      const item: OutboxItem<T> = {
        seq: cursor.tail,
        txnId: `bk.${randomUUID()}`,
        enqueuedAt: Date.now(),
        payload,
      };
      await this.items.set(itemKey(roomKey, item.seq), item); // stored before it is visible
      await this.cursors.set(roomKey, { head: cursor.head, tail: cursor.tail + 1 });
      return item;
    });
  }

  /**
   * Puts items AHEAD of the room's queue, `payloads[0]` first (history that must reach Matrix
   * before what is queued). Resolves once stored, with the items. Only call it when no item
   * of the room is being delivered (the room's own drain loop, between items): the oldest
   * item changes. The items are stored before the cursor makes them visible; a crash between
   * leaves them unread. Rejects with OutboxFullError when they do not fit in maxPerRoom.
   */
  prepend(roomKey: string, payloads: readonly T[]): Promise<Array<OutboxItem<T>>> {
    if (typeof roomKey !== "string" || roomKey === "")
      return Promise.reject(new TypeError("Outbox.prepend: roomKey must be a non-empty string"));
    if (payloads.some((p) => p === undefined))
      return Promise.reject(new TypeError("Outbox.prepend: a payload is undefined"));
    if (payloads.length === 0) return Promise.resolve([]);
    return this.lock.run(roomKey, async () => {
      const cursor = (await this.cursors.get(roomKey)) ?? { head: 0, tail: 0 };
      const held = cursor.tail - cursor.head;
      if (held + payloads.length > this.maxPerRoom)
        throw new OutboxFullError(
          `outbox for ${roomKey} holds ${held} items; ${payloads.length} more would pass maxPerRoom ${this.maxPerRoom}`,
        );
      const head = cursor.head - payloads.length;
      const now = Date.now();
      const items = payloads.map((payload, i) => ({
        seq: head + i,
        txnId: `bk.${randomUUID()}`,
        enqueuedAt: now,
        payload,
      }));
      if (held === 0) await this.addRoom(roomKey);
      await this.items.setMany(items.map((item) => [itemKey(roomKey, item.seq), item] as const));
      await this.cursors.set(roomKey, { head, tail: cursor.tail });
      return items;
    });
  }

  /** The oldest unacknowledged item of the room, or undefined if none. Does not remove it. */
  peek(roomKey: string): Promise<OutboxItem<T> | undefined> {
    return this.lock.run(roomKey, async () => {
      const cursor = await this.cursors.get(roomKey);
      if (!cursor) return undefined;
      let head = cursor.head;
      while (head < cursor.tail) {
        const item = await this.items.get(itemKey(roomKey, head));
        if (item) {
          if (head !== cursor.head) await this.cursors.set(roomKey, { head, tail: cursor.tail });
          return item;
        }
        head++; // deleted by an ack that crashed before moving the cursor
      }
      if (head !== cursor.head) await this.settleEmpty(roomKey, { head, tail: cursor.tail });
      return undefined;
    });
  }

  /**
   * Removes the item `seq` after the homeserver accepted it. Acknowledging an item already
   * acknowledged is a no-op; acknowledging any other than the oldest throws (strict order).
   */
  ack(roomKey: string, seq: number): Promise<void> {
    return this.lock.run(roomKey, async () => {
      const cursor = await this.cursors.get(roomKey);
      if (!cursor || seq < cursor.head) return;
      if (seq !== cursor.head)
        throw new Error(
          `outbox for ${roomKey}: cannot acknowledge item ${seq} before item ${cursor.head} (strict order)`,
        );
      await this.items.delete(itemKey(roomKey, seq));
      await this.settleEmpty(roomKey, { head: seq + 1, tail: cursor.tail });
    });
  }

  /** How many items the room holds. */
  async size(roomKey: string): Promise<number> {
    const cursor = await this.cursors.get(roomKey);
    return cursor ? cursor.tail - cursor.head : 0;
  }

  /**
   * What the outbox holds, for metrics: items and rooms with items, and when the oldest item
   * at the head of a room's queue was enqueued (undefined when empty). Reads, never writes:
   * three round trips, whatever the number of rooms.
   */
  async stats(): Promise<{ items: number; rooms: number; oldestEnqueuedAt: number | undefined }> {
    const rooms = await this.rooms();
    const cursors = await this.cursors.getMany(rooms);
    let items = 0;
    const heads: string[] = [];
    rooms.forEach((room, i) => {
      const cursor = cursors[i];
      if (!cursor || cursor.tail <= cursor.head) return;
      items += cursor.tail - cursor.head;
      heads.push(itemKey(room, cursor.head));
    });
    let oldestEnqueuedAt: number | undefined;
    for (const item of heads.length > 0 ? await this.items.getMany(heads) : []) {
      if (item && (oldestEnqueuedAt === undefined || item.enqueuedAt < oldestEnqueuedAt)) {
        oldestEnqueuedAt = item.enqueuedAt;
      }
    }
    return { items, rooms: heads.length, oldestEnqueuedAt };
  }

  /**
   * Every item not yet acknowledged, room by room in order, read in pages of 256 (for start-up
   * checks such as which spooled files are still needed). Reads, never writes.
   */
  async *pending(): AsyncGenerator<OutboxItem<T>> {
    const rooms = await this.rooms();
    const cursors = await this.cursors.getMany(rooms);
    for (const [i, room] of rooms.entries()) {
      const cursor = cursors[i];
      if (!cursor) continue;
      for (let from = cursor.head; from < cursor.tail; from += 256) {
        const keys: string[] = [];
        for (let seq = from; seq < Math.min(cursor.tail, from + 256); seq++) keys.push(itemKey(room, seq));
        for (const item of await this.items.getMany(keys)) if (item) yield item;
      }
    }
  }

  /** Room keys that may hold items (read this at start-up and deliver each). */
  async rooms(): Promise<string[]> {
    return [...((await this.index.get("rooms")) ?? [])];
  }

  /** Writes the cursor; once a room is empty, unlists it (after the cursor says so). */
  private async settleEmpty(roomKey: string, cursor: Cursor): Promise<void> {
    await this.cursors.set(roomKey, cursor);
    if (cursor.head >= cursor.tail) await this.removeRoom(roomKey);
  }

  private addRoom(roomKey: string): Promise<void> {
    return this.lock.run("\u0000index", async () => {
      const rooms = (await this.index.get("rooms")) ?? [];
      if (!rooms.includes(roomKey)) await this.index.set("rooms", [...rooms, roomKey]);
    });
  }

  private removeRoom(roomKey: string): Promise<void> {
    return this.lock.run("\u0000index", async () => {
      const rooms = (await this.index.get("rooms")) ?? [];
      if (rooms.includes(roomKey))
        await this.index.set(
          "rooms",
          rooms.filter((r) => r !== roomKey),
        );
    });
  }
}

function itemKey(roomKey: string, seq: number): string {
  return `${roomKey.length}:${roomKey}\n${seq}`;
}
