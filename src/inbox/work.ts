import type { AppserviceHandlers, TransactionContext } from "../appservice/handlers.js";
import type { DeadLetter, DeadLetters } from "./dead-letters.js";
import type { Inbox, InboxItem, InboxTransaction } from "./inbox.js";

/**
 * One unit of work the lanes run: an item of a recorded transaction, or a dead letter being
 * retried. The lanes call `run` (through the timeout), and `finish` once the work is over.
 */
export interface LaneWork {
  /** The lane it runs in: its room id, or `\0<kind>` for data without a room. */
  readonly lane: string;
  /** Names it in logs and dead letters: the event id, or `<kind> of <txnId>`. */
  readonly id: string;
  readonly txnId: string;
  readonly item: InboxItem;
  /** Tries made, and Date.now() of the first; set by the lanes. */
  attempts: number;
  firstTriedAt: number;
  /** Calls the handler for the item. */
  run(ctx: TransactionContext): Promise<void> | void;
  /**
   * The work is over: handled, or (`dead`) stored as a dead letter. Records that; resolves
   * once durable. May be called again after a failure (the store was down).
   */
  finish(outcome: "handled" | "dead"): Promise<void>;
}

/** The handler name for an item kind (metrics and logs). */
export const HANDLER_NAMES: Record<InboxItem["kind"], string> = {
  event: "onEvent",
  to_device: "onToDevice",
  device_lists: "onDeviceLists",
  key_counts: "onOneTimeKeyCounts",
};

/** Calls the handler for an item; items whose handler is absent are done at once. */
export function runItem(
  handlers: AppserviceHandlers,
  item: InboxItem,
  ctx: TransactionContext,
): Promise<void> | void {
  switch (item.kind) {
    case "event":
      return handlers.onEvent(item.event, ctx);
    case "to_device":
      return handlers.onToDevice?.(item.messages, ctx);
    case "device_lists":
      return handlers.onDeviceLists?.(item.lists, ctx);
    case "key_counts":
      return handlers.onOneTimeKeyCounts?.(item.counts, ctx);
  }
}

/** The lane of an item: its room, or one lane per kind of data without a room. */
export function laneOf(item: InboxItem): string {
  return item.kind === "event" ? item.event.room_id : `\u0000${item.kind}`;
}

/** An item of a transaction in the inbox. */
export class InboxWork implements LaneWork {
  readonly lane: string;
  attempts = 0;
  firstTriedAt = 0;
  private marked = false;

  constructor(
    private readonly handlers: AppserviceHandlers,
    private readonly inbox: Inbox,
    private readonly entry: InboxTransaction,
    private readonly index: number,
  ) {
    this.lane = laneOf(this.item);
  }

  get item(): InboxItem {
    return this.entry.items[this.index]!;
  }

  get txnId(): string {
    return this.entry.txnId;
  }

  get id(): string {
    const item = this.item;
    return item.kind === "event" ? item.event.event_id : `${item.kind} of ${this.entry.txnId}`;
  }

  run(ctx: TransactionContext): Promise<void> | void {
    return runItem(this.handlers, this.item, ctx);
  }

  finish(): Promise<void> {
    if (this.marked) return this.inbox.rewrite(this.entry);
    this.marked = true;
    return this.inbox.markHandled(this.entry, this.index);
  }
}

/** A dead letter sent through its lane again (`bridgekit dead-letters retry`). */
export class RetriedLetter implements LaneWork {
  readonly lane: string;
  attempts = 0;
  firstTriedAt = 0;

  constructor(
    private readonly handlers: AppserviceHandlers,
    private readonly letters: DeadLetters,
    readonly letter: DeadLetter,
    /** Called once the retry is over, either way. */
    private readonly over: () => void = () => undefined,
  ) {
    this.lane = laneOf(letter.item);
  }

  get id(): string {
    return this.letter.id;
  }

  get txnId(): string {
    return `retry of ${this.letter.id}`;
  }

  get item(): InboxItem {
    return this.letter.item;
  }

  run(ctx: TransactionContext): Promise<void> | void {
    return runItem(this.handlers, this.letter.item, ctx);
  }

  /** Handled: the dead letter goes. Dead again: the lanes stored the new one in its place. */
  async finish(outcome: "handled" | "dead"): Promise<void> {
    if (outcome === "handled") await this.letters.remove(this.letter.id);
    this.over();
  }
}
