import { redactText } from "../common/logger.js";
import { KeyedLock } from "../store/keyed-lock.js";
import type { KeyValue, Store } from "../store/store.js";
import type { InboxItem } from "./inbox.js";

/** Why an item became a dead letter. */
export type DeadLetterReason =
  /** The handler threw a PermanentError. */
  | "permanent"
  /** The retry budget ran out (RetryableError, a timeout, or an unexpected error). */
  | "exhausted"
  /** The adapter cannot carry this kind of event. */
  | "unsupported";

/** An item the bridge gave up on: kept with its error until retried or dropped. */
export interface DeadLetter {
  /** The event id, or `<kind> of <txnId>` for data without one. */
  id: string;
  /** The room, for an event. */
  roomId?: string;
  /** The item as it was recorded (the whole event). */
  item: InboxItem;
  reason: DeadLetterReason;
  /** The error: its class name and message (tokens masked); never a stack trace. */
  error: { name: string; message: string };
  /** What the sender was (or would be) told. */
  userMessage: string;
  /** Tries made. */
  attempts: number;
  /** Date.now() of the first try, the last try, and when it became a dead letter. */
  firstTriedAt: number;
  lastTriedAt: number;
  deadAt: number;
  /** Set by `requestRetry` while the bridge is not running: retried at its next start. */
  retryRequested?: boolean;
}

export interface DeadLettersOptions {
  /** Dead letters kept; past it the oldest is dropped (default 10 000). */
  max?: number;
  /**
   * Strings masked as `***` in stored error messages wherever they appear (the registration's
   * tokens), beside the `access_token=` and `Bearer` forms that are always masked.
   */
  secrets?: readonly string[];
}

/**
 * The dead letters, in store namespace "inbox-dead": each under `d:<id>`, and their ids
 * oldest first under `index`. Bounded by count: adding past `max` drops the oldest. One
 * writer at a time (the running bridge, or the CLI while the bridge is stopped).
 */
export class DeadLetters {
  private readonly kv: KeyValue<unknown>;
  private readonly lock = new KeyedLock();
  private readonly secrets: readonly string[];
  readonly max: number;

  constructor(store: Store, options: DeadLettersOptions = {}) {
    this.max = options.max ?? 10_000;
    this.secrets = (options.secrets ?? []).filter((s) => s.length > 0);
    if (!Number.isSafeInteger(this.max) || this.max < 1)
      throw new RangeError(`deadLetters.max must be a positive integer, got ${String(this.max)}`);
    this.kv = store.namespace("inbox-dead");
  }

  /** Every dead letter, oldest first. */
  async list(): Promise<DeadLetter[]> {
    const ids = await this.ids();
    if (ids.length === 0) return [];
    const values = await this.kv.getMany(ids.map((id) => `d:${id}`));
    return values.filter(isDeadLetter);
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    const value = await this.kv.get(`d:${id}`);
    return isDeadLetter(value) ? value : undefined;
  }

  /** How many there are. */
  async count(): Promise<number> {
    return (await this.ids()).length;
  }

  /**
   * Stores a dead letter (replacing one with the same id, which keeps its place); resolves
   * once durable, with the ids dropped to stay within `max`.
   */
  add(letter: DeadLetter): Promise<string[]> {
    const safe: DeadLetter = {
      ...letter,
      error: { name: letter.error.name, message: this.mask(letter.error.message) },
    };
    return this.lock.run("index", async () => {
      const ids = await this.ids();
      const next = ids.includes(letter.id) ? ids : [...ids, letter.id];
      const dropped = next.length > this.max ? next.slice(0, next.length - this.max) : [];
      const kept = dropped.length > 0 ? next.slice(dropped.length) : next;
      await this.kv.setMany([
        [`d:${letter.id}`, safe],
        ["index", kept],
      ]);
      if (dropped.length > 0) await this.kv.deleteMany(dropped.map((id) => `d:${id}`));
      return dropped;
    });
  }

  /** Removes a dead letter; false if there was none with that id. */
  remove(id: string): Promise<boolean> {
    return this.lock.run("index", async () => {
      const ids = await this.ids();
      if (!ids.includes(id)) return false;
      await this.kv.set(
        "index",
        ids.filter((x) => x !== id),
      );
      await this.kv.delete(`d:${id}`);
      return true;
    });
  }

  /** Marks a dead letter to be retried when the bridge next starts; false if there is none. */
  requestRetry(id: string): Promise<boolean> {
    return this.lock.run("index", async () => {
      const letter = await this.get(id);
      if (!letter) return false;
      await this.kv.set(`d:${id}`, { ...letter, retryRequested: true });
      return true;
    });
  }

  private mask(text: string): string {
    let out = redactText(text);
    for (const secret of this.secrets) out = out.split(secret).join("***");
    return out;
  }

  private async ids(): Promise<string[]> {
    const value = await this.kv.get("index");
    return Array.isArray(value) ? value.filter((x): x is string => typeof x === "string") : [];
  }
}

function isDeadLetter(value: unknown): value is DeadLetter {
  const v = value as Partial<DeadLetter> | undefined;
  return typeof v?.id === "string" && typeof v.item === "object" && v.item !== null;
}
