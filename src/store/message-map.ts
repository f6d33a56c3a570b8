import { KeyedLock } from "./keyed-lock.js";
import type { KeyValue, Store } from "./store.js";

/** One remote message and the Matrix event that carries it. */
export interface MessageLink {
  /** The remote room the message is in; remote message ids are unique within it. */
  remoteRoomId: string;
  remoteId: string;
  /** The Matrix room the event is in. */
  roomId: string;
  /** The Matrix event id (globally unique). */
  eventId: string;
}

export interface MessageMapOptions {
  /** Store namespace prefix (default "messages"). */
  namespace?: string;
  /**
   * Links kept per remote room (default 10000). Linking one more forgets the oldest of that
   * room, so edits, replies and reactions to very old messages can no longer be resolved.
   */
  maxPerRoom?: number;
}

interface Slot {
  remoteId: string;
  eventId: string;
}

/**
 * Message ids both ways: remote message id (within a remote room) <-> Matrix event id, so
 * edits, redactions, replies and reactions can be resolved in either direction. Retention is
 * bounded: each remote room keeps its newest `maxPerRoom` links in a ring, and linking one
 * more forgets the oldest. A link interrupted by a crash may be forgotten at the next link
 * in that room, but never resolves to a wrong message: each direction is checked against the
 * other on read. One Matrix event per remote message: if an adapter splits a message into
 * several events, link the first. Single writer process assumed.
 */
export class MessageMap {
  private readonly forward: KeyValue<MessageLink>; // (remoteRoomId, remoteId) -> link
  private readonly reverse: KeyValue<MessageLink>; // eventId -> link
  private readonly slots: KeyValue<Slot>; // (remoteRoomId, n mod maxPerRoom) -> slot
  private readonly heads: KeyValue<number>; // remoteRoomId -> links ever made
  private readonly lock = new KeyedLock();
  readonly maxPerRoom: number;

  constructor(store: Store, opts: MessageMapOptions = {}) {
    const ns = opts.namespace ?? "messages";
    this.maxPerRoom = opts.maxPerRoom ?? 10_000;
    if (!Number.isInteger(this.maxPerRoom) || this.maxPerRoom < 1)
      throw new TypeError(`MessageMap maxPerRoom must be a positive integer, got ${opts.maxPerRoom}`);
    this.forward = store.namespace(`${ns}.remote`);
    this.reverse = store.namespace(`${ns}.event`);
    this.slots = store.namespace(`${ns}.ring`);
    this.heads = store.namespace(`${ns}.head`);
  }

  /**
   * Records that `remoteId` in `remoteRoomId` is `eventId` in `roomId`. Relinking a remote id
   * replaces its event id. Resolves once stored.
   */
  link(link: MessageLink): Promise<void> {
    for (const key of ["remoteRoomId", "remoteId", "roomId", "eventId"] as const)
      if (typeof link[key] !== "string" || link[key] === "")
        return Promise.reject(new TypeError(`MessageMap.link: ${key} must be a non-empty string`));
    const record: MessageLink = {
      remoteRoomId: link.remoteRoomId,
      remoteId: link.remoteId,
      roomId: link.roomId,
      eventId: link.eventId,
    };
    return this.lock.run(record.remoteRoomId, async () => {
      const previous = await this.forward.get(fwdKey(record.remoteRoomId, record.remoteId));
      if (previous?.eventId === record.eventId && previous.roomId === record.roomId) return; // already linked
      const head = (await this.heads.get(record.remoteRoomId)) ?? 0;
      const slotKey = fwdKey(record.remoteRoomId, String(head % this.maxPerRoom));
      const evicted = await this.slots.get(slotKey);
      if (evicted) await this.forget(record.remoteRoomId, evicted);
      if (previous && previous.eventId !== record.eventId) await this.reverse.delete(previous.eventId);
      await this.slots.set(slotKey, { remoteId: record.remoteId, eventId: record.eventId });
      await this.forward.set(fwdKey(record.remoteRoomId, record.remoteId), record);
      await this.reverse.set(record.eventId, record);
      await this.heads.set(record.remoteRoomId, head + 1);
    });
  }

  /** The Matrix side of a remote message, or undefined if unknown or forgotten. */
  async byRemoteId(remoteRoomId: string, remoteId: string): Promise<MessageLink | undefined> {
    const link = await this.forward.get(fwdKey(remoteRoomId, remoteId));
    if (!link) return undefined;
    const back = await this.reverse.get(link.eventId);
    return back?.remoteRoomId === remoteRoomId && back.remoteId === remoteId ? link : undefined;
  }

  /** The remote side of a Matrix event, or undefined if unknown or forgotten. */
  async byEventId(eventId: string): Promise<MessageLink | undefined> {
    const link = await this.reverse.get(eventId);
    if (!link) return undefined;
    const there = await this.forward.get(fwdKey(link.remoteRoomId, link.remoteId));
    return there?.eventId === eventId ? link : undefined;
  }

  /** Removes a link both ways (e.g. after the message was deleted); true if it existed. */
  unlink(remoteRoomId: string, remoteId: string): Promise<boolean> {
    return this.lock.run(remoteRoomId, async () => {
      const link = await this.forward.get(fwdKey(remoteRoomId, remoteId));
      if (!link) return false;
      await this.forget(remoteRoomId, { remoteId, eventId: link.eventId });
      return true;
    });
  }

  /** Deletes both directions of a slot's link, each only if it still belongs to it. */
  private async forget(remoteRoomId: string, slot: Slot): Promise<void> {
    const fwd = fwdKey(remoteRoomId, slot.remoteId);
    const current = await this.forward.get(fwd);
    if (current?.eventId === slot.eventId) await this.forward.delete(fwd);
    const back = await this.reverse.get(slot.eventId);
    if (back?.remoteRoomId === remoteRoomId && back.remoteId === slot.remoteId)
      await this.reverse.delete(slot.eventId);
  }
}

/** A room id and a second id as one unambiguous key (the room id is length-prefixed). */
function fwdKey(remoteRoomId: string, remoteId: string): string {
  return `${remoteRoomId.length}:${remoteRoomId}\n${remoteId}`;
}
