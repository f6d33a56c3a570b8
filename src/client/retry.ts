/** How the client retries a request. Every field is optional in options; these are the defaults. */
export interface RetryPolicy {
  /** Attempts per request, the first included (1 disables retries). Default 6. */
  maxAttempts: number;
  /** The first backoff delay for 5xx and connection errors, in ms. Default 250. */
  baseDelayMs: number;
  /** No single backoff wait is longer than this, in ms. Default 30 000. */
  maxDelayMs: number;
  /**
   * The longest rate-limit wait honoured, in ms: a homeserver asking for more is waited for
   * this long and then retried. Default 60 000.
   */
  maxRateLimitWaitMs: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 30_000,
  maxRateLimitWaitMs: 60_000,
});

/** Fills a partial policy with defaults and rejects nonsense with an error naming the key. */
export function resolveRetryPolicy(partial: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...DEFAULT_RETRY_POLICY, ...partial };
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new TypeError(`retry.maxAttempts must be an integer >= 1, got ${String(policy.maxAttempts)}`);
  }
  for (const key of ["baseDelayMs", "maxDelayMs", "maxRateLimitWaitMs"] as const) {
    const v = policy[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new TypeError(`retry.${key} must be a finite number >= 0, got ${String(v)}`);
    }
  }
  return policy;
}

/**
 * The wait before retry number `retry` (0 for the first retry) after a 5xx or connection
 * error: exponential from baseDelayMs, capped at maxDelayMs, with "equal jitter" (between half
 * and all of the capped value) so that many clients do not retry in step. Pure; `random`
 * returns a number in [0, 1).
 */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exp = policy.baseDelayMs * 2 ** Math.min(retry, 30);
  const capped = Math.min(policy.maxDelayMs, exp);
  return Math.min(policy.maxDelayMs, capped / 2 + random() * (capped / 2));
}

/**
 * How long a rate-limited answer asks us to wait, in ms: the body's `retry_after_ms`, else
 * the `Retry-After` header (seconds or an HTTP date), else undefined. Never negative.
 */
export function rateLimitDelay(
  body: unknown,
  retryAfterHeader: string | null,
  now: number = Date.now(),
): number | undefined {
  if (typeof body === "object" && body !== null) {
    const ms = (body as { retry_after_ms?: unknown }).retry_after_ms;
    if (typeof ms === "number" && Number.isFinite(ms) && ms >= 0) return ms;
  }
  if (retryAfterHeader !== null && retryAfterHeader.trim() !== "") {
    const text = retryAfterHeader.trim();
    if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
    const date = Date.parse(text);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  return undefined;
}
