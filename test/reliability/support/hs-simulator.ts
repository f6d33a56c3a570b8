/**
 * Pushes transactions the way Synapse does: one in flight at a time; a transaction counts as
 * delivered only on a 200 whose body is JSON; any other answer or a connection error is
 * retried forever (here: until a deadline, so a broken bridge fails the test instead of
 * hanging it) with the SAME txnId and the SAME events, re-serialised as Synapse's recoverer
 * does: only `events`, with the keys in a different order. Uses node:http directly, one
 * connection per attempt, so a killed bridge looks like what it is (a reset or a refusal).
 */
import { request } from "node:http";

export interface TransactionBody {
  events: Array<Record<string, unknown>>;
  ephemeral?: unknown[];
}

export interface PusherOptions {
  /** The bridge's base URL, e.g. http://127.0.0.1:9000. */
  baseUrl: string;
  hsToken: string;
  /** Retry backoff bounds (ms); each retry waits a random time between them. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Date.now() after which push() gives up with an error. */
  deadline: number;
  /**
   * Told of every attempt once it ended: its status (0: a connection error) and when it was
   * sent and answered (performance.now()).
   */
  onAttempt?: (a: { status: number; sentAt: number; answeredAt: number }) => void;
}

export interface AttemptResult {
  status: number;
  /** True if the body parsed as JSON. */
  json: boolean;
  text: string;
  /** The Retry-After header, if any. */
  retryAfter: string | undefined;
}

export class TransactionPusher {
  /** Attempts made, and how many of them failed (were retried). */
  attempts = 0;
  failures = 0;
  /** Answers by HTTP status (0: a connection error). */
  readonly statuses = new Map<number, number>();
  /** The last answer: its status (0: a connection error) and, for a 503, the body and Retry-After. */
  last: { status: number; text: string; retryAfter: string | undefined } | undefined;
  /** The last 503 answer (the bridge's inbox was full). */
  lastRefusal: { status: number; text: string; retryAfter: string | undefined } | undefined;

  constructor(private readonly o: PusherOptions) {}

  /** Delivers one transaction; resolves with the number of attempts it took. */
  async push(txnId: string, body: TransactionBody): Promise<number> {
    let attempt = 0;
    let last: string;
    for (;;) {
      const text =
        attempt === 0 ? JSON.stringify(body) : JSON.stringify({ events: body.events.map(reorder) });
      attempt++;
      this.attempts++;
      const sentAt = performance.now();
      try {
        const res = await putTransaction(this.o.baseUrl, this.o.hsToken, txnId, text);
        this.count(res.status, res.text, res.retryAfter);
        this.o.onAttempt?.({ status: res.status, sentAt, answeredAt: performance.now() });
        if (res.status === 200 && res.json) return attempt;
        last = `HTTP ${res.status} ${res.text.slice(0, 200)}`;
      } catch (err) {
        this.count(0, "", undefined);
        this.o.onAttempt?.({ status: 0, sentAt, answeredAt: performance.now() });
        last = (err as Error).message;
      }
      this.failures++;
      if (Date.now() > this.o.deadline)
        throw new Error(`transaction ${txnId} not accepted after ${attempt} attempts; last: ${last}`);
      const min = this.o.minBackoffMs ?? 10;
      const max = this.o.maxBackoffMs ?? 50;
      await new Promise((r) => setTimeout(r, min + Math.random() * (max - min)));
    }
  }

  private count(status: number, text: string, retryAfter: string | undefined): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    this.last = { status, text, retryAfter };
    if (status === 503) this.lastRefusal = this.last;
  }
}

/** One PUT /_matrix/app/v1/transactions/{txnId}; rejects on a connection error. */
export function putTransaction(
  baseUrl: string,
  hsToken: string,
  txnId: string,
  text: string,
  timeoutMs = 30_000,
): Promise<AttemptResult> {
  const url = new URL(`/_matrix/app/v1/transactions/${encodeURIComponent(txnId)}`, baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "PUT",
        headers: {
          Authorization: `Bearer ${hsToken}`,
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(text),
        },
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const out = Buffer.concat(chunks).toString("utf8");
          let json: boolean;
          try {
            JSON.parse(out);
            json = true;
          } catch {
            json = false;
          }
          const retryAfter = res.headers["retry-after"];
          resolve({ status: res.statusCode ?? 0, json, text: out, retryAfter });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(text);
  });
}

/** The same object with its keys (and its nested objects' keys) in reverse order. */
export function reorder<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reorder) as T;
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).reverse()) out[key] = reorder((value as Record<string, unknown>)[key]);
  return out as T;
}
