import { MatrixError } from "../client/matrix-error.js";
import type { Logger } from "../common/logger.js";
import type { JsonValue } from "../store/json.js";
import type { Outbox, OutboxItem } from "../store/outbox.js";
import type { KeyValue } from "../store/store.js";

export interface OutboxWorkerOptions<T extends JsonValue> {
  outbox: Outbox<T>;
  /** Delivers one item; resolves once the homeserver accepted it. */
  deliver(item: OutboxItem<T>, key: string): Promise<void>;
  /** Where undeliverable items go, so one bad item cannot block its room forever. */
  deadLetters: KeyValue<{ key: string; item: OutboxItem<T>; error: string; at: number }>;
  log: Logger;
  /** Called after an item was moved to the dead letters (for metrics). Must not throw. */
  onDeadLetter?: () => void;
  /**
   * Runs in a key's drain loop before each peek, when no item of the key is in flight: work
   * that must put items ahead of the queue (history, src/backfill) happens here. Returns
   * undefined when there is nothing to do (no promise on the hot path). Must not reject.
   */
  before?: (key: string) => Promise<void> | undefined;
  /** First retry delay after a failure (default 500 ms); doubles up to maxDelayMs. */
  minDelayMs?: number;
  /** Longest wait between retries (default 60 s). */
  maxDelayMs?: number;
}

/**
 * Thrown by `deliver` when the item was not delivered because something must go ahead of it
 * (a portal just made, whose history comes first): the item is peeked again at once, after
 * `before`, without counting as a failure.
 */
export class DeliverLater extends Error {
  override readonly name = "DeliverLater";
}

/**
 * True for failures that will not go away by retrying: a 4xx other than 429 (the request
 * itself is wrong or forbidden) or a local programming error. Everything else (5xx,
 * connection errors, 429, timeouts) is retried until it works.
 */
export function isPermanent(err: unknown): boolean {
  if (err instanceof MatrixError) return err.status >= 400 && err.status < 500 && err.status !== 429;
  return err instanceof TypeError && !/fetch failed|network|socket|ECONN/i.test(String(err.message));
}

/**
 * Drains an Outbox: one loop per key, strictly in order, each item retried with capped
 * exponential backoff until the homeserver accepts it, then acknowledged. A permanent
 * failure moves the item to the dead-letter namespace (logged) and the room goes on.
 */
export class OutboxWorker<T extends JsonValue> {
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private stopping = false;
  private readonly wake = new Set<() => void>();

  constructor(private readonly o: OutboxWorkerOptions<T>) {}

  /** Starts delivering every key that has items left from before (after a restart). */
  async start(): Promise<void> {
    this.stopping = false;
    for (const key of await this.o.outbox.rooms()) this.kick(key);
  }

  /** Makes sure the key's queue is being drained; call after every enqueue. */
  kick(key: string): void {
    if (this.stopping) return;
    if (this.running.has(key)) {
      this.again.add(key); // it may be about to finish; look once more after it does
      return;
    }
    const run = this.drain(key)
      .catch((err: unknown) =>
        this.o.log.error({ err, key }, "outbox drain failed; will retry on the next kick"),
      )
      .finally(() => {
        this.running.delete(key);
        if (this.again.delete(key)) this.kick(key);
      });
    this.running.set(key, run);
  }

  /** Items in flight finish (or give up their backoff wait); no new delivery starts. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const wake of this.wake) wake();
    await Promise.allSettled([...this.running.values()]);
  }

  /** Resolves when every queue is empty (or the worker stopped); for tests and shutdown. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  /** How many keys are being drained now (for the queue-depth metric). */
  get activeKeys(): number {
    return this.running.size;
  }

  private async drain(key: string): Promise<void> {
    let delay = this.o.minDelayMs ?? 500;
    const maxDelay = this.o.maxDelayMs ?? 60_000;
    while (!this.stopping) {
      const first = this.o.before?.(key);
      if (first) {
        await first;
        if (this.stopping) return; // it may have been cut short: the queue must not go ahead of it
      }
      const item = await this.o.outbox.peek(key);
      if (!item) return;
      try {
        await this.o.deliver(item, key);
      } catch (err) {
        if (err instanceof DeliverLater) continue;
        if (isPermanent(err)) {
          this.o.log.error(
            { err, key, seq: item.seq },
            "outbox item cannot be delivered; moved to dead letters",
          );
          await this.o.deadLetters.set(`${key} ${item.seq} ${item.txnId}`, {
            key,
            item,
            error: String((err as Error).message),
            at: Date.now(),
          });
          this.o.onDeadLetter?.();
        } else {
          this.o.log.warn({ err, key, seq: item.seq, retryInMs: delay }, "outbox delivery failed; retrying");
          await this.sleep(delay);
          delay = Math.min(delay * 2, maxDelay);
          continue;
        }
      }
      await this.o.outbox.ack(key, item.seq);
      delay = this.o.minDelayMs ?? 500;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms * (0.8 + Math.random() * 0.4));
      this.wake.add(done);
    });
  }
}
