/**
 * A barrier the homeserver's early calls wait at. The bridge listens before the adapter's
 * start() has connected (and Synapse redelivers at once after a restart), so queries and
 * handlers may arrive before the remote connection is there; they `wait` here instead of
 * failing. The adapter `open`s it once started (or online), `close`s it while reconnecting
 * and `fail`s it when it will not be usable (start failed, stopping).
 *
 * Contract: `wait` resolves at once while open; rejects at once with the failure while
 * failed; otherwise waits until `open` (resolves), `fail` (rejects with that error) or
 * `timeoutMs` (rejects with `onTimeout()`'s error). Waiters hold no timer after they settle,
 * so the waiting set is bounded by the calls in flight.
 */
export class StartBarrier {
  private state: "closed" | "open" | "failed" = "closed";
  private failure: Error | null = null;
  private readonly waiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();

  get isOpen(): boolean {
    return this.state === "open";
  }

  /** Lets every waiter (and every later wait) through. */
  open(): void {
    this.state = "open";
    this.failure = null;
    for (const w of [...this.waiters]) w.resolve();
  }

  /** Later waits wait again (until open, fail or their timeout); current waiters keep waiting. */
  close(): void {
    if (this.state === "open") this.state = "closed";
  }

  /** Rejects every waiter, and every later wait until `open`, with `err`. */
  fail(err: Error): void {
    this.state = "failed";
    this.failure = err;
    for (const w of [...this.waiters]) w.reject(err);
  }

  /** See the class contract. */
  wait(timeoutMs: number, onTimeout: () => Error): Promise<void> {
    if (this.state === "open") return Promise.resolve();
    if (this.state === "failed") return Promise.reject(this.failure!);
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => settle(() => resolve()),
        reject: (err: Error) => settle(() => reject(err)),
      };
      const timer = setTimeout(() => waiter.reject(onTimeout()), timeoutMs);
      const settle = (done: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        done();
      };
      this.waiters.add(waiter);
    });
  }
}
