/**
 * The ordered queue an adapter puts what it read from the remote network through, on its way
 * to the BridgeContext: one lane per remote room, each lane strictly in the order things were
 * added, lanes in parallel (at most `concurrency` tasks at once). When more than `highWater`
 * tasks wait or run, `pause()` is called (stop reading from the remote connection); once fewer
 * than `lowWater` are left, `resume()`. So a slow homeserver slows the remote reads instead of
 * filling memory.
 *
 * Contract:
 * - tasks of one key never overlap and start in the order they were added;
 * - a task's failure is handed to `onError` and never stops its lane;
 * - `pause` and `resume` alternate, starting with `pause`;
 * - `clear()` drops what has not started; what runs finishes.
 */

/** What the adapter reads from: the connection whose reads are paused. */
export interface OrderedQueueOptions {
  /** Above this many tasks (waiting or running), reads are paused. Default 1000. */
  highWater?: number;
  /** Below this many, reads resume. Default 100; must be below highWater. */
  lowWater?: number;
  /** Lanes running at once. Default 1 (everything in the order added, like one queue). */
  concurrency?: number;
  /** Stop reading from the remote network (e.g. `socket.pause()`). */
  pause(): void;
  /** Read again. */
  resume(): void;
  /** A task failed (it is not retried); `label` is the one given to `add`. */
  onError(err: unknown, key: string, label: string | undefined): void;
}

interface Task {
  run: () => Promise<void>;
  label: string | undefined;
}

export class OrderedQueue {
  private readonly highWater: number;
  private readonly lowWater: number;
  private readonly concurrency: number;
  /** Waiting tasks per key, oldest first; a key is present only while it has waiting tasks. */
  private readonly lanes = new Map<string, Task[]>();
  /** Keys with a task running. */
  private readonly running = new Set<string>();
  /** Keys with waiting tasks and none running, in the order they became ready. */
  private readonly ready: string[] = [];
  private waiting = 0;
  private paused = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: OrderedQueueOptions) {
    this.highWater = opts.highWater ?? 1000;
    this.lowWater = opts.lowWater ?? 100;
    this.concurrency = opts.concurrency ?? 1;
    if (!(this.lowWater >= 0 && this.lowWater < this.highWater)) {
      throw new Error(
        `OrderedQueue: lowWater (${this.lowWater}) must be at least 0 and below highWater (${this.highWater})`,
      );
    }
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new Error(
        `OrderedQueue: concurrency must be a whole number of at least 1, got ${this.concurrency}`,
      );
    }
  }

  /** Tasks waiting or running. */
  get size(): number {
    return this.waiting + this.running.size;
  }

  /** True while reads are paused. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Queues `task` behind the tasks already queued for `key` (a remote room). Never throws. */
  add(key: string, task: () => Promise<void>, label?: string): void {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = [];
      this.lanes.set(key, lane);
      if (!this.running.has(key)) this.ready.push(key);
    }
    lane.push({ run: task, label });
    this.waiting += 1;
    if (!this.paused && this.size > this.highWater) {
      this.paused = true;
      this.opts.pause();
    }
    this.pump();
  }

  /** Resolves once nothing waits or runs. */
  onIdle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops every task that has not started (the running ones finish). Resumes reads if paused. */
  clear(): void {
    this.lanes.clear();
    this.ready.length = 0;
    this.waiting = 0;
    this.afterSettle();
  }

  private pump(): void {
    while (this.running.size < this.concurrency && this.ready.length > 0) {
      const key = this.ready.shift()!;
      const lane = this.lanes.get(key);
      const task = lane?.shift();
      if (!lane || !task) continue;
      if (lane.length === 0) this.lanes.delete(key);
      this.waiting -= 1;
      this.running.add(key);
      void this.run(key, task);
    }
  }

  private async run(key: string, task: Task): Promise<void> {
    try {
      await task.run();
    } catch (err) {
      try {
        this.opts.onError(err, key, task.label);
      } catch {
        // An error reporter that throws must not stop the queue.
      }
    }
    this.running.delete(key);
    if (this.lanes.has(key)) this.ready.push(key);
    this.afterSettle();
    this.pump();
  }

  private afterSettle(): void {
    if (this.paused && this.size < this.lowWater) {
      this.paused = false;
      this.opts.resume();
    }
    if (this.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
