/**
 * What a handler throws to say how its failure should be treated. Anything else it throws
 * (a TypeError, a network error) counts as "unexpected": retried a few times, then
 * dead-lettered; see InboxRetryPolicy.
 */

/**
 * "Try this again later": the remote network is down, rate-limited, or busy. The event is
 * retried with backoff (its room's later events wait; other rooms go on) until the retry
 * budget is spent, then dead-lettered with `userMessage` (or a generic one).
 */
export class RetryableError extends Error {
  override readonly name: string = "RetryableError";
  /** Wait at least this long before the next try (e.g. the remote's Retry-After). */
  readonly retryAfterMs: number | undefined;
  /** What to tell the sender if the retries run out. Never a stack trace or a secret. */
  readonly userMessage: string | undefined;

  constructor(message: string, options: ErrorOptions & { retryAfterMs?: number; userMessage?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
    this.userMessage = options.userMessage;
  }
}

/**
 * "This will never work": the message cannot be mapped, the remote refused it for good, the
 * user may not do that. The event is dead-lettered at once and the sender is told
 * `userMessage` in the room ("not bridged: <userMessage>"), so write it for a person.
 */
export class PermanentError extends Error {
  override readonly name: string = "PermanentError";

  constructor(
    /** What to tell the sender, e.g. "files over 10 MB cannot be sent to IRC". */
    readonly userMessage: string,
    options?: ErrorOptions,
  ) {
    super(userMessage, options);
  }
}

/**
 * "The adapter cannot carry this kind of event" (no handler for edits, say): a PermanentError
 * the framework throws itself; its dead letter's reason is "unsupported".
 */
export class UnsupportedError extends PermanentError {
  override readonly name: string = "UnsupportedError";
}

/** How the inbox treats a failure. */
export type FailureKind = "retryable" | "permanent" | "unexpected";

/** Classifies a handler's failure (a timeout is retryable). */
export function failureKind(err: unknown): FailureKind {
  if (err instanceof PermanentError) return "permanent";
  if (err instanceof RetryableError) return "retryable";
  if (err instanceof Error && err.name === "HandlerTimeoutError") return "retryable";
  return "unexpected";
}
