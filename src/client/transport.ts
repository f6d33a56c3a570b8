import { setTimeout as sleep } from "node:timers/promises";
import PQueue from "p-queue";
import { concatBytes } from "../common/bytes.js";
import { silentLogger, type Logger } from "../common/logger.js";
import { NamespaceMatcher } from "../registration/namespaces.js";
import type { Registration } from "../registration/types.js";
import { positive } from "./checks.js";
import { endpointOf } from "./endpoints.js";
import {
  HomeserverUnreachableError,
  MatrixError,
  ResponseTooLargeError,
  UserNotInNamespaceError,
} from "./matrix-error.js";
import { backoffDelay, rateLimitDelay, resolveRetryPolicy, type RetryPolicy } from "./retry.js";
import type { RequestInfo, ResponseInfo } from "./types.js";

/** How requests reach the homeserver and as whom; HomeserverClientOptions adds the intents' store. */
export interface TransportOptions {
  /** The client-server API base URL, e.g. "http://127.0.0.1:8008". */
  homeserverUrl: string;
  /** The homeserver's server name, e.g. "example.org" (the part after ":" in user ids). */
  domain: string;
  /** The registration: its as_token authenticates every call, its namespaces bound who we act as. */
  registration: Registration;
  logger?: Logger;
  /** Retry behaviour; see RetryPolicy for the defaults. */
  retry?: Partial<RetryPolicy>;
  /** Requests in flight at once, all users and rooms together. Default 10. */
  concurrency?: number;
  /** One attempt's time limit, in ms; a timed-out attempt is retried like a connection error. Default 60 000. */
  requestTimeoutMs?: number;
  /** The largest response body read (JSON or media), in bytes. Default 64 MiB. */
  maxResponseBytes?: number;
  /** The fetch to use (default: Node's global fetch). */
  fetch?: typeof fetch;
  /** Called before every HTTP attempt, retries included; for metrics and tests. Must not throw. */
  onRequest?: (info: RequestInfo) => void;
  /** Called after every HTTP attempt, retries included, with its endpoint, status and duration. Must not throw. */
  onResponse?: (info: ResponseInfo) => void;
}

export interface CallOptions {
  /** The acting user; asserted with ?user_id= unless it is the bot. */
  userId?: string;
  query?: Record<string, string | number | undefined>;
  /** A JSON body. */
  json?: unknown;
  /** A raw body (media upload). */
  bytes?: {
    /** The body, or a function opening a fresh stream of it for each attempt (then `length` is sent). */
    data: Uint8Array | (() => Promise<ReadableStream<Uint8Array>>);
    contentType: string;
    length?: number;
  };
  /** Return the raw response bytes instead of parsed JSON. */
  raw?: boolean;
  /** Per-call cap on the response size (default: the transport's maxResponseBytes). */
  maxBytes?: number;
  /** Attempts for this call (default: the retry policy's maxAttempts). */
  attempts?: number;
  /**
   * Leave a successful answer's body unread: RawAnswer.stream holds it (an empty `body`).
   * The queue slot and the time limit cover the attempt until the headers arrive, not the
   * body; the body stops with `signal` or when the transport closes. A declared
   * Content-Length over `maxBytes` still fails (ResponseTooLargeError); the reader caps the rest.
   */
  stream?: boolean;
  /** Aborts the call (and, with `stream`, the body). */
  signal?: AbortSignal;
}

export interface RawAnswer {
  status: number;
  headers: Headers;
  body: Uint8Array;
  /** With CallOptions.stream, the unread body of a 2xx answer. */
  stream?: ReadableStream<Uint8Array>;
}

/**
 * One logical request at a time, the way an application service must make it:
 * `Authorization: Bearer <as_token>` (never a query-string token), `?user_id=` identity
 * assertion for anyone but the bot, a refusal before any I/O of a user we may not act as,
 * a time limit per attempt, retries (429 waits as asked; 5xx, connection errors and
 * timeouts back off exponentially with jitter; other 4xx fail at once), at most
 * `concurrency` attempts in flight, and the onRequest / onResponse hooks.
 */
export class Transport {
  readonly matcher: NamespaceMatcher;
  readonly botUserId: string;
  readonly registrationId: string;
  readonly retryPolicy: RetryPolicy;

  /** A true private field: never enumerated, so a logged transport cannot show the token. */
  readonly #authHeader: string;
  readonly #options: TransportOptions;
  private readonly baseUrl: string;
  private readonly log: Logger;
  private readonly queue: PQueue;
  private readonly fetchImpl: typeof fetch;
  private readonly onRequest: ((info: RequestInfo) => void) | undefined;
  private readonly onResponse: ((info: ResponseInfo) => void) | undefined;
  private readonly requestTimeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly closing: AbortController;

  /**
   * @param shareWith (internal, see forRegistration) a transport whose connection settings,
   *   queue, retry policy, limits, hooks, logger and closing this one shares.
   */
  constructor(opts: TransportOptions, shareWith?: Transport) {
    this.#options = opts;
    this.matcher = new NamespaceMatcher(opts.registration, opts.domain);
    this.botUserId = this.matcher.botUserId;
    this.registrationId = opts.registration.id;
    this.#authHeader = `Bearer ${opts.registration.as_token}`;
    if (shareWith !== undefined) {
      this.baseUrl = shareWith.baseUrl;
      this.retryPolicy = shareWith.retryPolicy;
      this.log = shareWith.log;
      this.queue = shareWith.queue;
      this.fetchImpl = shareWith.fetchImpl;
      this.onRequest = shareWith.onRequest;
      this.onResponse = shareWith.onResponse;
      this.requestTimeoutMs = shareWith.requestTimeoutMs;
      this.maxResponseBytes = shareWith.maxResponseBytes;
      this.closing = shareWith.closing;
      return;
    }
    this.baseUrl = baseUrlOf(opts.homeserverUrl);
    this.retryPolicy = resolveRetryPolicy(opts.retry);
    this.log = opts.logger ?? silentLogger();
    const concurrency = opts.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new TypeError(`concurrency must be an integer >= 1, got ${String(concurrency)}`);
    }
    this.queue = new PQueue({ concurrency });
    this.fetchImpl = opts.fetch ?? fetch;
    this.onRequest = opts.onRequest;
    this.onResponse = opts.onResponse;
    this.requestTimeoutMs = positive("requestTimeoutMs", opts.requestTimeoutMs ?? 60_000);
    this.maxResponseBytes = positive("maxResponseBytes", opts.maxResponseBytes ?? 64 * 1024 * 1024);
    this.closing = new AbortController();
  }

  /**
   * A transport that acts through another application service on the same homeserver (a
   * double-puppet registration): its as_token, `?user_id=` for the users of its namespace,
   * and a refusal before any I/O of anyone else. It shares this transport's queue (so
   * `concurrency` bounds both together), retries, limits, hooks, logger and closing.
   */
  forRegistration(registration: Registration): Transport {
    return new Transport({ ...this.#options, registration }, this);
  }

  /**
   * A transport that acts as one local user with that user's own access token (no
   * `?user_id=`), refusing anyone else before any I/O; shared like forRegistration's. The
   * token is not checked here (whoami is the caller's to call).
   */
  forUserToken(userId: string, accessToken: string): Transport {
    const colon = userId.indexOf(":");
    if (!userId.startsWith("@") || colon < 2 || userId.slice(colon + 1) !== this.#options.domain) {
      throw new TypeError(`${userId} is not a user of ${this.#options.domain}`);
    }
    if (typeof accessToken !== "string" || accessToken === "")
      throw new TypeError("the access token is empty");
    return this.forRegistration({
      id: `access token of ${userId}`,
      url: null,
      as_token: accessToken,
      hs_token: "",
      sender_localpart: userId.slice(1, colon),
      namespaces: { users: [], aliases: [], rooms: [] },
    });
  }

  /** Throws UserNotInNamespaceError unless we may act as this user. No I/O. */
  assertMayActAs(userId: string): void {
    if (typeof userId !== "string" || !this.matcher.mayActAs(userId)) {
      throw new UserNotInNamespaceError(String(userId), this.registrationId, this.botUserId);
    }
  }

  /**
   * Waits for attempts in flight, then fails any retry still waiting. Later calls fail, on
   * every transport made from this one (forRegistration, forUserToken) and the one it was made from.
   */
  async close(): Promise<void> {
    await this.queue.onIdle();
    this.closing.abort(new Error("the homeserver client is closed"));
  }

  /**
   * One logical request with its retries. JSON in, JSON out (or raw bytes with `raw`).
   * Errors: MatrixError for a homeserver answer, HomeserverUnreachableError once connection
   * errors outlast the retries, ResponseTooLargeError for an oversized answer.
   */
  async call<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
    if (opts.userId !== undefined) this.assertMayActAs(opts.userId);
    const assertUser = opts.userId !== undefined && opts.userId !== this.botUserId ? opts.userId : undefined;
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) params.set(k, String(v));
    if (assertUser !== undefined) params.set("user_id", assertUser);
    const [pathOnly, pathQuery] = splitQuery(path);
    const query = [pathQuery, params.toString()].filter((q) => q !== "").join("&");
    const url = `${this.baseUrl}${pathOnly}${query === "" ? "" : `?${query}`}`;
    const request = `${method} ${pathOnly}`;
    const headers: Record<string, string> = { Authorization: this.#authHeader };
    let body: Body;
    if (opts.bytes !== undefined) {
      headers["Content-Type"] = opts.bytes.contentType;
      if (opts.bytes.length !== undefined) headers["Content-Length"] = String(opts.bytes.length);
      body = opts.bytes.data;
    } else if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    const limit = opts.maxBytes ?? this.maxResponseBytes;
    const policy =
      opts.attempts === undefined ? this.retryPolicy : { ...this.retryPolicy, maxAttempts: opts.attempts };

    const out: Outgoing = { url, method, headers, body };
    const how: AttemptOptions = { limit, request, stream: opts.stream === true, signal: opts.signal };

    for (let attempt = 1; ; attempt++) {
      if (this.closing.signal.aborted) throw new Error(`${request}: the homeserver client is closed`);
      opts.signal?.throwIfAborted();
      this.onRequest?.({ method, path: pathOnly, userId: assertUser, attempt });
      let answer: RawAnswer;
      try {
        answer = await this.queue.add(() => this.timed(method, pathOnly, () => this.attempt(out, how)));
      } catch (err) {
        if (err instanceof ResponseTooLargeError) throw err;
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (attempt >= policy.maxAttempts) throw new HomeserverUnreachableError(request, attempt, err);
        const wait = backoffDelay(attempt - 1, policy);
        this.log.warn(
          { request, attempt, waitMs: Math.round(wait), err: String(err) },
          "homeserver unreachable; retrying",
        );
        await this.wait(wait);
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) {
        this.log.debug({ request, status: answer.status, attempt }, "homeserver request done");
        if (opts.raw) return answer as T;
        return (answer.body.length === 0 ? {} : parseJson(answer.body, request)) as T;
      }
      const errBody = tryParseJson(answer.body);
      const errcode = typeof errBody?.errcode === "string" ? errBody.errcode : "M_UNKNOWN";
      const errText = typeof errBody?.error === "string" ? errBody.error : `HTTP ${answer.status}`;
      const retryAfter = rateLimitDelay(errBody, answer.headers.get("retry-after"));
      const error = new MatrixError(answer.status, errcode, errText, request, retryAfter);
      const retriable = error.isRateLimited || answer.status >= 500;
      if (!retriable || attempt >= policy.maxAttempts) {
        this.log.debug({ request, status: answer.status, errcode, attempt }, "homeserver request failed");
        throw error;
      }
      const wait = error.isRateLimited
        ? Math.min(retryAfter ?? backoffDelay(attempt - 1, policy), policy.maxRateLimitWaitMs)
        : backoffDelay(attempt - 1, policy);
      this.log.warn(
        { request, status: answer.status, errcode, attempt, waitMs: Math.round(wait) },
        "retrying",
      );
      await this.wait(wait);
    }
  }

  /** Runs an attempt and tells onResponse its endpoint, status (undefined without an answer) and duration. */
  private async timed(method: string, path: string, attempt: () => Promise<RawAnswer>): Promise<RawAnswer> {
    const onResponse = this.onResponse;
    if (!onResponse) return attempt();
    const started = performance.now();
    let status: number | undefined;
    try {
      const answer = await attempt();
      status = answer.status;
      return answer;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      onResponse({ method, endpoint: endpointOf(path), status, seconds });
    }
  }

  private async attempt(out: Outgoing, how: AttemptOptions): Promise<RawAnswer> {
    const { limit, request } = how;
    if (how.stream) return this.streamingAttempt(out, how);
    const res = await this.fetchImpl(
      out.url,
      await this.init(out, AbortSignal.timeout(this.requestTimeoutMs), how),
    );
    await refuseDeclaredOverLimit(res, limit, request);
    return { status: res.status, headers: res.headers, body: await readLimited(res, limit, request) };
  }

  /**
   * An attempt whose 2xx body is handed over unread: the time limit runs until the headers
   * arrive; afterwards only the caller's signal and the transport's closing stop the body.
   */
  private async streamingAttempt(out: Outgoing, how: AttemptOptions): Promise<RawAnswer> {
    const { limit, request } = how;
    const headersTimeout = new AbortController();
    const timer = setTimeout(
      () => headersTimeout.abort(new Error(`${request}: no answer within ${this.requestTimeoutMs} ms`)),
      this.requestTimeoutMs,
    );
    let res: Response;
    try {
      res = await this.fetchImpl(out.url, await this.init(out, headersTimeout.signal, how));
    } finally {
      clearTimeout(timer);
    }
    await refuseDeclaredOverLimit(res, limit, request);
    if (res.status < 200 || res.status >= 300 || res.body === null) {
      return { status: res.status, headers: res.headers, body: await readLimited(res, limit, request) };
    }
    return {
      status: res.status,
      headers: res.headers,
      body: new Uint8Array(0),
      stream: res.body as ReadableStream<Uint8Array>,
    };
  }

  /** fetch's init: no redirects; stopped by `timeout`, the transport's closing or the caller's signal. */
  private async init(out: Outgoing, timeout: AbortSignal, how: AttemptOptions): Promise<RequestInit> {
    const signals = [timeout, this.closing.signal];
    if (how.signal) signals.push(how.signal);
    const { method, headers, body } = out;
    const init: RequestInit = { method, headers, signal: AbortSignal.any(signals), redirect: "error" };
    if (typeof body === "function") {
      // A stream is read once: each attempt opens its own.
      init.body = await body();
      (init as RequestInit & { duplex: "half" }).duplex = "half";
    } else if (body !== undefined) init.body = body;
    return init;
  }

  private async wait(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.closing.signal });
    } catch {
      throw new Error("the homeserver client was closed while a request waited to retry");
    }
  }
}

type Body = string | Uint8Array | (() => Promise<ReadableStream<Uint8Array>>) | undefined;

/** The base URL without a trailing slash; refuses a relative URL, another scheme, a query or credentials. */
function baseUrlOf(homeserverUrl: string): string {
  let url: URL;
  try {
    url = new URL(homeserverUrl);
  } catch {
    throw new TypeError(`homeserverUrl "${homeserverUrl}" is not an absolute URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`homeserverUrl "${homeserverUrl}" must be http:// or https://`);
  }
  if (url.search !== "" || url.username !== "" || url.password !== "") {
    throw new TypeError("homeserverUrl must carry no query string or credentials");
  }
  return url.toString().replace(/\/+$/, "");
}

/** One request as sent, the same for every attempt. */
interface Outgoing {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Body;
}

interface AttemptOptions {
  limit: number;
  request: string;
  stream: boolean;
  signal: AbortSignal | undefined;
}

/** Fails (after dropping the body) when the answer's Content-Length says more than `limit`. */
async function refuseDeclaredOverLimit(res: Response, limit: number, request: string): Promise<void> {
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => undefined);
    throw new ResponseTooLargeError(request, limit);
  }
}

async function readLimited(res: Response, limit: number, request: string): Promise<Uint8Array> {
  if (res.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new ResponseTooLargeError(request, limit);
    }
    chunks.push(value);
  }
  return concatBytes(chunks, size);
}

function parseJson(body: Uint8Array, request: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new Error(`${request}: the homeserver answered with a body that is not JSON`);
  }
}

function tryParseJson(body: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(new TextDecoder().decode(body));
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function splitQuery(path: string): [string, string] {
  const q = path.indexOf("?");
  return q < 0 ? [path, ""] : [path.slice(0, q), path.slice(q + 1)];
}
