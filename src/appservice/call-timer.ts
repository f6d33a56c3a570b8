import type { Logger } from "../common/logger.js";
import { HandlerTimeoutError } from "./errors.js";
import type { TransactionContext } from "./handlers.js";

/** What a CallTimer calls: one handler call's work, for one transaction. */
export interface TimedTask {
  readonly txnId: string;
  run(ctx: TransactionContext): Promise<void> | void;
  /** The logger the handler gets as `ctx.log`; asked for only when the handler reads it. */
  log(): Logger;
}

/** What a CallTimer reports besides the promise `run` returns. Must not throw. */
export interface CallHooks<T extends TimedTask> {
  /**
   * The call's promise is about to settle (success, failure or timeout), after `ms`; called
   * synchronously before the caller resumes, so the caller can free what the call held.
   */
  settled(task: T, name: string, ms: number): void;
  /** An outcome that arrived after the task's timeout (never an unhandled rejection). */
  lateSuccess(task: T, name: string): void;
  lateFailure(task: T, name: string, err: Error): void;
}

/**
 * One handler call, and the context it is given. The AbortController is made only if the
 * handler reads `signal` or its time runs out (most handlers never look).
 */
class TimedCall<T extends TimedTask> implements TransactionContext {
  private controller: AbortController | undefined;
  /** Told the outcome once: success, failure or timeout (whichever comes first). */
  done: ((err: Error | undefined) => void) | undefined;
  timedOut = false;

  constructor(
    readonly task: T,
    readonly name: string,
    /** performance.now() when the call started. */
    readonly started: number,
  ) {}

  get transactionId(): string {
    return this.task.txnId;
  }

  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }

  get log(): Logger {
    return this.task.log();
  }

  abort(error: Error): void {
    (this.controller ??= new AbortController()).abort(error);
  }
}

/**
 * Runs handler calls with a timeout for the per-event hot path. There is no timer per call:
 * one ticker, running only while calls are, checks the calls in progress (at most the
 * dispatcher's concurrency) every `timeoutMs / 10` (at least 1 ms, at most 1 s). A call
 * therefore fails between `timeoutMs` and `timeoutMs` plus one tick after it started.
 */
export class CallTimer<T extends TimedTask> {
  private readonly running = new Set<TimedCall<T>>();
  private ticker: NodeJS.Timeout | undefined;
  private readonly tickMs: number;

  constructor(
    private readonly timeoutMs: number,
    private readonly hooks: CallHooks<T>,
  ) {
    this.tickMs = Math.min(1_000, Math.max(1, Math.floor(timeoutMs / 10)));
  }

  /**
   * Runs `task` with a TransactionContext. Resolves or rejects with its outcome, or rejects
   * with a HandlerTimeoutError once its time is up (the signal is then aborted). An outcome
   * after the timeout goes to the hooks' late methods.
   */
  run(name: string, task: T): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.call(name, task, (err) => (err ? reject(err) : resolve())),
    );
  }

  /**
   * `run` without a promise of its own, for the per-event path: `done` is called once, with
   * undefined on success or the error (a HandlerTimeoutError once the time is up),
   * synchronously when the handler returned synchronously, else when its promise settles.
   */
  call(name: string, task: T, done: (err: Error | undefined) => void): void {
    const call = new TimedCall(task, name, performance.now());
    let result: Promise<void> | void;
    try {
      result = task.run(call);
    } catch (err) {
      this.hooks.settled(task, name, performance.now() - call.started);
      return done(asError(err));
    }
    if (!isThenable(result)) {
      // A synchronous handler.
      this.hooks.settled(task, name, performance.now() - call.started);
      return done(undefined);
    }
    call.done = done;
    this.running.add(call);
    this.ticker ??= setInterval(() => this.tick(), this.tickMs);
    result.then(
      () => this.settle(call, undefined),
      (err: unknown) => this.settle(call, asError(err)),
    );
  }

  /**
   * Aborts the signal of every call in progress (shutdown). The calls still settle as usual:
   * by their own outcome, or by their timeout.
   */
  abortAll(reason: Error): void {
    for (const call of this.running) call.abort(reason);
  }

  private settle(call: TimedCall<T>, err: Error | undefined): void {
    if (call.timedOut) {
      if (err) this.hooks.lateFailure(call.task, call.name, err);
      else this.hooks.lateSuccess(call.task, call.name);
      return;
    }
    this.running.delete(call);
    this.hooks.settled(call.task, call.name, performance.now() - call.started);
    call.done!(err);
  }

  private tick(): void {
    const now = performance.now();
    for (const call of this.running) {
      if (now - call.started < this.timeoutMs) continue;
      this.running.delete(call);
      call.timedOut = true;
      const error = new HandlerTimeoutError(call.name, this.timeoutMs);
      call.abort(error);
      this.hooks.settled(call.task, call.name, now - call.started);
      call.done!(error);
    }
    if (this.running.size === 0) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }
}

function isThenable(value: unknown): value is PromiseLike<void> {
  return typeof (value as PromiseLike<void> | undefined)?.then === "function";
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
