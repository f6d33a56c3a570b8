import { failureKind } from "./errors.js";

/** How long and how often a failing event is retried before it becomes a dead letter. */
export interface InboxRetryPolicy {
  /** Wait before the first retry (ms); doubles on each further try. */
  firstDelayMs: number;
  /** The longest wait between two tries (ms). */
  maxDelayMs: number;
  /** Tries in all (the first one included) for a RetryableError or a timeout. */
  maxAttempts: number;
  /** Give up once this long has passed since the first try (ms), whatever the count. */
  maxAgeMs: number;
  /**
   * Tries in all for an unexpected error (a bug, anything not a RetryableError): fewer, so a
   * handler that always throws on one event holds its room back for seconds, not minutes.
   */
  unexpectedAttempts: number;
}

/**
 * The defaults: 1 s doubling to 5 min, 10 tries or 1 hour (about 14 minutes of tries when
 * every try fails at once), and 3 tries (1 s, 2 s) for unexpected errors.
 */
export const DEFAULT_INBOX_RETRY: Readonly<InboxRetryPolicy> = {
  firstDelayMs: 1_000,
  maxDelayMs: 300_000,
  maxAttempts: 10,
  maxAgeMs: 3_600_000,
  unexpectedAttempts: 3,
};

/** A policy with every field given, each checked. Throws a RangeError naming the bad field. */
export function inboxRetryPolicy(given: Partial<InboxRetryPolicy> = {}): InboxRetryPolicy {
  const policy = { ...DEFAULT_INBOX_RETRY, ...given };
  for (const [name, value] of Object.entries(policy)) {
    if (!Number.isSafeInteger(value) || value < (name.endsWith("Attempts") ? 1 : 0)) {
      throw new RangeError(
        `retry.${name} must be a ${name.endsWith("Attempts") ? "positive" : "non-negative"} integer, got ${String(value)}`,
      );
    }
  }
  return policy;
}

/**
 * What to do after a failed try: wait `delayMs` and try again, or give up. `attempts` counts
 * the tries made so far (at least 1); `firstTriedAt` is when the first one started.
 */
export function nextTry(
  policy: InboxRetryPolicy,
  err: unknown,
  attempts: number,
  firstTriedAt: number,
  now: number,
): { retry: true; delayMs: number } | { retry: false; reason: "permanent" | "exhausted" } {
  const kind = failureKind(err);
  if (kind === "permanent") return { retry: false, reason: "permanent" };
  const budget = kind === "unexpected" ? policy.unexpectedAttempts : policy.maxAttempts;
  const backoff = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** Math.min(attempts - 1, 40));
  const asked = (err as { retryAfterMs?: unknown }).retryAfterMs;
  const delayMs = typeof asked === "number" && asked > backoff ? Math.min(asked, policy.maxAgeMs) : backoff;
  if (attempts >= budget || now + delayMs - firstTriedAt > policy.maxAgeMs) {
    return { retry: false, reason: "exhausted" };
  }
  return { retry: true, delayMs };
}
