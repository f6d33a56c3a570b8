import { HandlerTimeoutError } from "./errors.js";

/** What `withTimeout` reports about a call that settled after its timeout. */
export interface LateSettlement<T> {
  onLateSuccess?(value: T): void;
  onLateFailure?(error: unknown): void;
}

/**
 * Runs `fn` with an AbortSignal that fires after `timeoutMs`; rejects with a
 * HandlerTimeoutError at that point. The call itself may still settle later: its outcome is
 * then passed to `late` (never to an unhandled rejection), and it cannot change the
 * already-returned result.
 *
 * `fn` gets the signal as a function: the AbortController is made only if the handler asks
 * for its signal or the timeout fires (most handlers never look; one per event adds up).
 */
export function withTimeout<T>(
  name: string,
  timeoutMs: number,
  fn: (signal: () => AbortSignal) => Promise<T>,
  late: LateSettlement<T> = {},
): Promise<T> {
  let controller: AbortController | undefined;
  const signal = () => (controller ??= new AbortController()).signal;
  let timedOut = false;
  let call: Promise<T>;
  try {
    call = fn(signal);
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      timedOut = true;
      const error = new HandlerTimeoutError(name, timeoutMs);
      (controller ??= new AbortController()).abort(error);
      reject(error);
    }, timeoutMs);
    Promise.resolve(call).then(
      (value) => {
        clearTimeout(timer);
        if (timedOut) late.onLateSuccess?.(value);
        else resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (timedOut) late.onLateFailure?.(err);
        else reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
