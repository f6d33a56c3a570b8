/**
 * At most `max` calls at once; the rest wait in arrival order. A minimal semaphore for the
 * per-event hot path: taking a free slot is a counter increment (p-queue costs several
 * promises and events per call).
 */
export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private head = 0;

  constructor(private readonly max: number) {}

  /** Calls running plus calls waiting for a slot. */
  get size(): number {
    return this.active + this.waiting.length - this.head;
  }

  /** Runs `fn` once a slot is free; the slot is given back when its promise settles. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const wait = this.acquire();
    if (wait) await wait;
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /**
   * Takes a slot: returns undefined when one was free (taken synchronously, no promise), or a
   * promise that resolves once the caller holds one. Every acquire needs one `release`.
   */
  acquire(): Promise<void> | undefined {
    if (this.active < this.max) {
      this.active++;
      return undefined;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Gives a slot back (to the longest waiter, if any). */
  release(): void {
    if (this.head < this.waiting.length) {
      const next = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined as never;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      next(); // the slot passes straight to the next caller
    } else {
      this.active--;
      if (this.head > 0) this.waiting.length = this.head = 0;
    }
  }
}
