import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import PQueue from "p-queue";
import { silentLogger, type Logger } from "../common/logger.js";
import type { MatrixEvent, MatrixStateEvent } from "../matrix/events.js";
import { NamespaceMatcher } from "../registration/namespaces.js";
import type { Registration } from "../registration/types.js";
import type { Store } from "../store/store.js";
import { Intent } from "./intent.js";
import { IntentState } from "./intent-state.js";
import {
  HomeserverUnreachableError,
  MatrixError,
  ResponseTooLargeError,
  UserNotInNamespaceError,
} from "./matrix-error.js";
import { checkTs, positive } from "./checks.js";
import { endpointOf } from "./endpoints.js";
import { backoffDelay, rateLimitDelay, resolveRetryPolicy, type RetryPolicy } from "./retry.js";
import type {
  CreateRoomOptions,
  DownloadedMedia,
  Presence,
  RegisterResult,
  RequestInfo,
  ResponseInfo,
  ClientSendOptions,
  ClientStateOptions,
  UploadOptions,
} from "./types.js";

export interface HomeserverClientOptions {
  /** The client-server API base URL, e.g. "http://127.0.0.1:8008". */
  homeserverUrl: string;
  /** The homeserver's server name, e.g. "example.org" (the part after ":" in user ids). */
  domain: string;
  /** The registration: its as_token authenticates every call, its namespaces bound who we act as. */
  registration: Registration;
  /** Where intents remember registrations, memberships and profiles (namespace "intents"). */
  store: Store;
  logger?: Logger;
  /** Retry behaviour; see RetryPolicy for the defaults. */
  retry?: Partial<RetryPolicy>;
  /** Requests in flight at once, all users and rooms together. Default 10. */
  concurrency?: number;
  /** One attempt's time limit, in ms; a timed-out attempt is retried like a connection error. Default 60 000. */
  requestTimeoutMs?: number;
  /** The largest response body read (JSON or media), in bytes. Default 64 MiB. */
  maxResponseBytes?: number;
  /** Entries of the intents' LRU (registrations, memberships, profiles). Default 10 000. */
  cacheSize?: number;
  /** The fetch to use (default: Node's global fetch). */
  fetch?: typeof fetch;
  /** Called before every HTTP attempt, retries included; for metrics and tests. Must not throw. */
  onRequest?: (info: RequestInfo) => void;
  /** Called after every HTTP attempt, retries included, with its endpoint, status and duration. Must not throw. */
  onResponse?: (info: ResponseInfo) => void;
}

interface CallOptions {
  /** The acting user; asserted with ?user_id= unless it is the bot. */
  userId?: string;
  query?: Record<string, string | number | undefined>;
  /** A JSON body. */
  json?: unknown;
  /** A raw body (media upload). */
  bytes?: { data: Uint8Array; contentType: string };
  /** Return the raw response bytes instead of parsed JSON. */
  raw?: boolean;
  /** Per-call cap on the response size (default: the client's maxResponseBytes). */
  maxBytes?: number;
  /** Attempts for this call (default: the retry policy's maxAttempts). */
  attempts?: number;
}

interface RawAnswer {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

const CLIENT_V3 = "/_matrix/client/v3";
const enc = encodeURIComponent;

/**
 * The client-server API as an application service speaks it: `Authorization: Bearer
 * <as_token>` (never a query-string token), `?user_id=` identity assertion for ghosts,
 * `?ts=` timestamp massaging, retries (429 waits as asked; 5xx and connection errors back
 * off exponentially with jitter; other 4xx fail at once), a bounded number of requests in
 * flight, and sends into one room kept in call order.
 *
 * Every call that acts as a user refuses, before any I/O, a user outside the registration's
 * users namespace who is not its bot. Use `intent(userId)` for the ergonomic per-user API.
 */
export class HomeserverClient {
  readonly matcher: NamespaceMatcher;
  readonly botUserId: string;
  readonly retryPolicy: RetryPolicy;
  /** @internal Shared by every Intent of this client. */
  readonly intentState: IntentState;

  private readonly baseUrl: string;
  private readonly authHeader: string;
  private readonly registrationId: string;
  private readonly log: Logger;
  private readonly queue: PQueue;
  private readonly fetchImpl: typeof fetch;
  private readonly onRequest: ((info: RequestInfo) => void) | undefined;
  private readonly onResponse: ((info: ResponseInfo) => void) | undefined;
  private readonly requestTimeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly roomTails = new Map<string, Promise<void>>();
  private readonly closing = new AbortController();
  private readonly txnPrefix = randomBytes(6).toString("base64url");
  private txnCounter = 0;

  constructor(opts: HomeserverClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.homeserverUrl);
    } catch {
      throw new TypeError(`homeserverUrl "${opts.homeserverUrl}" is not an absolute URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`homeserverUrl "${opts.homeserverUrl}" must be http:// or https://`);
    }
    if (url.search !== "" || url.username !== "" || url.password !== "") {
      throw new TypeError("homeserverUrl must carry no query string or credentials");
    }
    this.baseUrl = url.toString().replace(/\/+$/, "");
    this.matcher = new NamespaceMatcher(opts.registration, opts.domain);
    this.botUserId = this.matcher.botUserId;
    this.registrationId = opts.registration.id;
    this.authHeader = `Bearer ${opts.registration.as_token}`;
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
    this.intentState = new IntentState(opts.store, opts.cacheSize ?? 10_000);
  }

  // ---- intents ---------------------------------------------------------------------------

  /**
   * The intent of a user: the bot or a user in the users namespace. Refuses anyone else at
   * once with UserNotInNamespaceError (no HTTP call). Cheap: state lives in the client.
   */
  intent(userId: string): Intent {
    this.assertMayActAs(userId);
    return new Intent(this, userId, this.intentState);
  }

  /** The bridge bot's intent. */
  get botIntent(): Intent {
    return this.intent(this.botUserId);
  }

  /**
   * Keeps intents' membership records current. Call it for every event the homeserver
   * pushes: an m.room.member event about one of our users records its membership (join ->
   * joined; leave, ban, invite -> not joined), and a join also records that the user exists.
   * Returns true if it recorded something. Other events are ignored.
   */
  async observeEvent(event: MatrixEvent): Promise<boolean> {
    if (event.type !== "m.room.member" || typeof event.state_key !== "string") return false;
    const target = event.state_key;
    const membership = event.content?.membership;
    if (typeof membership !== "string" || typeof event.room_id !== "string") return false;
    if (!this.matcher.mayActAs(target)) return false;
    await this.intentState.setMembership(event.room_id, target, membership);
    if (membership === "join") await this.intentState.setRegistered(target);
    return true;
  }

  /** How many entries the intents' LRU holds (bounded by cacheSize). */
  get cachedIntentEntries(): number {
    return this.intentState.cachedEntries;
  }

  // ---- server ----------------------------------------------------------------------------

  /** `GET /_matrix/client/versions`; `attempts` 1 for a quick reachability check without retries. */
  versions(
    opts: { attempts?: number } = {},
  ): Promise<{ versions: string[]; unstable_features?: Record<string, boolean> }> {
    return this.call(
      "GET",
      "/_matrix/client/versions",
      opts.attempts === undefined ? {} : { attempts: opts.attempts },
    );
  }

  /**
   * Asks the homeserver to ping this application service (`POST /_matrix/client/v1/appservice/{id}/ping`).
   * One attempt, no retries: a 502/504 answer says the homeserver cannot reach the bridge, which
   * retrying the same second does not change.
   */
  ping(transactionId?: string): Promise<{ duration_ms: number }> {
    return this.call("POST", `/_matrix/client/v1/appservice/${enc(this.registrationId)}/ping`, {
      json: transactionId === undefined ? {} : { transaction_id: transactionId },
      attempts: 1,
    });
  }

  /** `GET /account/whoami` as a user (default: the bot). */
  whoami(userId: string = this.botUserId): Promise<{ user_id: string; device_id?: string }> {
    return this.call("GET", `${CLIENT_V3}/account/whoami`, { userId });
  }

  // ---- users -----------------------------------------------------------------------------

  /**
   * Registers a user in the namespace (`m.login.application_service`, `inhibit_login`).
   * An existing user (`M_USER_IN_USE`) is not an error: `created` is false.
   */
  async register(userId: string): Promise<RegisterResult> {
    this.assertMayActAs(userId);
    const username = userId.slice(1, userId.indexOf(":"));
    try {
      await this.call("POST", `${CLIENT_V3}/register`, {
        json: { type: "m.login.application_service", username, inhibit_login: true },
      });
      return { userId, created: true };
    } catch (err) {
      if (err instanceof MatrixError && err.errcode === "M_USER_IN_USE") return { userId, created: false };
      throw err;
    }
  }

  async setDisplayName(userId: string, displayName: string): Promise<void> {
    await this.call("PUT", `${CLIENT_V3}/profile/${enc(userId)}/displayname`, {
      userId,
      json: { displayname: displayName },
    });
  }

  async setAvatarUrl(userId: string, avatarUrl: string): Promise<void> {
    await this.call("PUT", `${CLIENT_V3}/profile/${enc(userId)}/avatar_url`, {
      userId,
      json: { avatar_url: avatarUrl },
    });
  }

  /** Anyone's profile, read as the bot. */
  getProfile(target: string): Promise<{ displayname?: string; avatar_url?: string }> {
    return this.call("GET", `${CLIENT_V3}/profile/${enc(target)}`, { userId: this.botUserId });
  }

  async setPresence(userId: string, presence: Presence, statusMsg?: string): Promise<void> {
    const json: Record<string, unknown> = { presence };
    if (statusMsg !== undefined) json.status_msg = statusMsg;
    await this.call("PUT", `${CLIENT_V3}/presence/${enc(userId)}/status`, { userId, json });
  }

  // ---- rooms -----------------------------------------------------------------------------

  /** Creates a room as a user; returns its id. */
  async createRoom(userId: string, options: CreateRoomOptions = {}): Promise<string> {
    const res = await this.call<{ room_id: string }>("POST", `${CLIENT_V3}/createRoom`, {
      userId,
      json: options,
    });
    return res.room_id;
  }

  /** Joins a room by id or alias; returns the room id. */
  async joinRoom(userId: string, roomIdOrAlias: string, viaServers: readonly string[] = []): Promise<string> {
    const query = viaServers.length > 0 ? `?${viaServers.map((s) => `via=${enc(s)}`).join("&")}` : "";
    const res = await this.call<{ room_id: string }>(
      "POST",
      `${CLIENT_V3}/join/${enc(roomIdOrAlias)}${query}`,
      { userId, json: {} },
    );
    return res.room_id;
  }

  async leaveRoom(userId: string, roomId: string, reason?: string): Promise<void> {
    await this.call("POST", `${CLIENT_V3}/rooms/${enc(roomId)}/leave`, {
      userId,
      json: withReason({}, reason),
    });
  }

  async invite(userId: string, roomId: string, target: string, reason?: string): Promise<void> {
    await this.membershipCall("invite", userId, roomId, target, reason);
  }

  async kick(userId: string, roomId: string, target: string, reason?: string): Promise<void> {
    await this.membershipCall("kick", userId, roomId, target, reason);
  }

  async ban(userId: string, roomId: string, target: string, reason?: string): Promise<void> {
    await this.membershipCall("ban", userId, roomId, target, reason);
  }

  async unban(userId: string, roomId: string, target: string, reason?: string): Promise<void> {
    await this.membershipCall("unban", userId, roomId, target, reason);
  }

  /**
   * Sends a message event; returns its event id. `ts` sets origin_server_ts; the txnId
   * (given or generated once for this call) is reused by every retry. Sends, state events
   * and redactions into one room are made in call order.
   */
  async sendEvent(
    userId: string,
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    opts: ClientSendOptions = {},
  ): Promise<string> {
    const prepared = this.prepareSend(userId, opts);
    return this.inRoomOrder(roomId, () => this.sendEventNow(userId, roomId, type, content, prepared));
  }

  /** Sets a state event; returns its event id. In room order with sends. */
  async sendState(
    userId: string,
    roomId: string,
    type: string,
    stateKey: string,
    content: Record<string, unknown>,
    opts: ClientStateOptions = {},
  ): Promise<string> {
    checkTs(opts.ts);
    this.assertMayActAs(userId);
    return this.inRoomOrder(roomId, () => this.sendStateNow(userId, roomId, type, stateKey, content, opts));
  }

  /** Redacts an event; returns the redaction's event id. In room order with sends. */
  async redact(
    userId: string,
    roomId: string,
    eventId: string,
    opts: { reason?: string; txnId?: string } = {},
  ): Promise<string> {
    this.assertMayActAs(userId);
    const txnId = opts.txnId ?? this.newTxnId();
    return this.inRoomOrder(roomId, async () => {
      const res = await this.call<{ event_id: string }>(
        "PUT",
        `${CLIENT_V3}/rooms/${enc(roomId)}/redact/${enc(eventId)}/${enc(txnId)}`,
        { userId, json: withReason({}, opts.reason) },
      );
      return res.event_id;
    });
  }

  /** The room's current state, as a member of it. */
  getState(userId: string, roomId: string): Promise<MatrixStateEvent[]> {
    return this.call("GET", `${CLIENT_V3}/rooms/${enc(roomId)}/state`, { userId });
  }

  /** One state event's content, or undefined if the room has none (404 M_NOT_FOUND). */
  async getStateEvent(
    userId: string,
    roomId: string,
    type: string,
    stateKey = "",
  ): Promise<Record<string, unknown> | undefined> {
    try {
      return await this.call("GET", `${CLIENT_V3}/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`, {
        userId,
      });
    } catch (err) {
      if (err instanceof MatrixError && err.status === 404) return undefined;
      throw err;
    }
  }

  async setTyping(userId: string, roomId: string, typing: boolean, timeoutMs = 30_000): Promise<void> {
    await this.call("PUT", `${CLIENT_V3}/rooms/${enc(roomId)}/typing/${enc(userId)}`, {
      userId,
      json: typing ? { typing: true, timeout: timeoutMs } : { typing: false },
    });
  }

  async sendReadReceipt(userId: string, roomId: string, eventId: string): Promise<void> {
    await this.call("POST", `${CLIENT_V3}/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, {
      userId,
      json: {},
    });
  }

  // ---- aliases and directory -------------------------------------------------------------

  async createAlias(userId: string, alias: string, roomId: string): Promise<void> {
    await this.call("PUT", `${CLIENT_V3}/directory/room/${enc(alias)}`, {
      userId,
      json: { room_id: roomId },
    });
  }

  async deleteAlias(userId: string, alias: string): Promise<void> {
    await this.call("DELETE", `${CLIENT_V3}/directory/room/${enc(alias)}`, { userId });
  }

  /** The room an alias points at, or undefined if it points nowhere (404). */
  async resolveAlias(alias: string): Promise<{ roomId: string; servers: string[] } | undefined> {
    try {
      const res = await this.call<{ room_id: string; servers?: string[] }>(
        "GET",
        `${CLIENT_V3}/directory/room/${enc(alias)}`,
      );
      return { roomId: res.room_id, servers: res.servers ?? [] };
    } catch (err) {
      if (err instanceof MatrixError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Lists (or unlists) a room in the room directory of one remote network of this bridge. */
  async setRoomDirectoryVisibility(
    networkId: string,
    roomId: string,
    visibility: "public" | "private",
  ): Promise<void> {
    await this.call("PUT", `${CLIENT_V3}/directory/list/appservice/${enc(networkId)}/${enc(roomId)}`, {
      json: { visibility },
    });
  }

  // ---- media -----------------------------------------------------------------------------

  /** Uploads media as a user; returns its mxc:// URI. */
  async uploadMedia(userId: string, data: Uint8Array, opts: UploadOptions = {}): Promise<string> {
    const res = await this.call<{ content_uri: string }>("POST", "/_matrix/media/v3/upload", {
      userId,
      query: { filename: opts.filename },
      bytes: { data, contentType: opts.contentType ?? "application/octet-stream" },
    });
    return res.content_uri;
  }

  /** Downloads media by mxc:// URI with authenticated media (`/_matrix/client/v1/media/download`). */
  async downloadMedia(
    mxc: string,
    opts: { userId?: string; maxBytes?: number } = {},
  ): Promise<DownloadedMedia> {
    const m = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(mxc);
    if (!m) throw new TypeError(`"${mxc}" is not an mxc:// URI (mxc://server/mediaId)`);
    const callOpts: CallOptions = { raw: true, userId: opts.userId ?? this.botUserId };
    if (opts.maxBytes !== undefined) callOpts.maxBytes = positive("maxBytes", opts.maxBytes);
    const answer = await this.call<RawAnswer>(
      "GET",
      `/_matrix/client/v1/media/download/${enc(m[1]!)}/${enc(m[2]!)}`,
      callOpts,
    );
    return { data: answer.body, contentType: answer.headers.get("content-type") ?? undefined };
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** Waits for requests in flight, then fails any retry still waiting. Later calls fail. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.roomTails.values()]);
    await this.queue.onIdle();
    this.closing.abort(new Error("the homeserver client is closed"));
  }

  // ---- internals -------------------------------------------------------------------------

  /** @internal Checks a send's arguments before any I/O and fixes its txnId for every retry. */
  prepareSend(userId: string, opts: ClientSendOptions): ClientSendOptions & { txnId: string } {
    checkTs(opts.ts);
    this.assertMayActAs(userId);
    if (opts.txnId !== undefined && (typeof opts.txnId !== "string" || opts.txnId === "")) {
      throw new TypeError("txnId must be a non-empty string");
    }
    return { ...opts, txnId: opts.txnId ?? this.newTxnId() };
  }

  /** @internal A send without room ordering; the caller holds the room's turn. */
  async sendEventNow(
    userId: string,
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    opts: ClientSendOptions & { txnId: string },
  ): Promise<string> {
    const res = await this.call<{ event_id: string }>(
      "PUT",
      `${CLIENT_V3}/rooms/${enc(roomId)}/send/${enc(type)}/${enc(opts.txnId)}`,
      { userId, query: { ts: opts.ts }, json: content },
    );
    return res.event_id;
  }

  /** @internal A state event without room ordering; the caller holds the room's turn. */
  async sendStateNow(
    userId: string,
    roomId: string,
    type: string,
    stateKey: string,
    content: Record<string, unknown>,
    opts: ClientStateOptions,
  ): Promise<string> {
    const res = await this.call<{ event_id: string }>(
      "PUT",
      `${CLIENT_V3}/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`,
      { userId, query: { ts: opts.ts }, json: content },
    );
    return res.event_id;
  }

  /**
   * @internal Runs `fn` after every earlier `inRoomOrder` call for the same room settled
   * (whatever their outcome). Only rooms with work pending have an entry.
   */
  inRoomOrder<T>(roomId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.roomTails.get(roomId) ?? Promise.resolve();
    const run = previous.then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.roomTails.set(roomId, tail);
    void tail.then(() => {
      if (this.roomTails.get(roomId) === tail) this.roomTails.delete(roomId);
    });
    return run;
  }

  /** @internal Throws UserNotInNamespaceError unless we may act as this user. No I/O. */
  assertMayActAs(userId: string): void {
    if (typeof userId !== "string" || !this.matcher.mayActAs(userId)) {
      throw new UserNotInNamespaceError(String(userId), this.registrationId, this.botUserId);
    }
  }

  private newTxnId(): string {
    this.txnCounter += 1;
    return `bk.${this.txnPrefix}.${Date.now()}.${this.txnCounter}`;
  }

  private async membershipCall(
    action: "invite" | "kick" | "ban" | "unban",
    userId: string,
    roomId: string,
    target: string,
    reason: string | undefined,
  ): Promise<void> {
    await this.call("POST", `${CLIENT_V3}/rooms/${enc(roomId)}/${action}`, {
      userId,
      json: withReason({ user_id: target }, reason),
    });
  }

  /**
   * One logical request with its retries. JSON in, JSON out (or raw bytes with `raw`).
   * Errors: MatrixError for a homeserver answer, HomeserverUnreachableError once connection
   * errors outlast the retries, ResponseTooLargeError for an oversized answer.
   */
  private async call<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
    if (opts.userId !== undefined) this.assertMayActAs(opts.userId);
    const assertUser = opts.userId !== undefined && opts.userId !== this.botUserId ? opts.userId : undefined;
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) params.set(k, String(v));
    if (assertUser !== undefined) params.set("user_id", assertUser);
    const [pathOnly, pathQuery] = splitQuery(path);
    const query = [pathQuery, params.toString()].filter((q) => q !== "").join("&");
    const url = `${this.baseUrl}${pathOnly}${query === "" ? "" : `?${query}`}`;
    const request = `${method} ${pathOnly}`;
    const headers: Record<string, string> = { Authorization: this.authHeader };
    let body: string | Uint8Array | undefined;
    if (opts.bytes !== undefined) {
      headers["Content-Type"] = opts.bytes.contentType;
      body = opts.bytes.data;
    } else if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    const limit = opts.maxBytes ?? this.maxResponseBytes;
    const policy =
      opts.attempts === undefined ? this.retryPolicy : { ...this.retryPolicy, maxAttempts: opts.attempts };

    for (let attempt = 1; ; attempt++) {
      if (this.closing.signal.aborted) throw new Error(`${request}: the homeserver client is closed`);
      this.onRequest?.({ method, path: pathOnly, userId: assertUser, attempt });
      let answer: RawAnswer;
      try {
        answer = await this.queue.add(() =>
          this.timed(method, pathOnly, () => this.attempt(url, method, headers, body, limit, request)),
        );
      } catch (err) {
        if (err instanceof ResponseTooLargeError) throw err;
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

  private async attempt(
    url: string,
    method: string,
    headers: Record<string, string>,
    body: string | Uint8Array | undefined,
    limit: number,
    request: string,
  ): Promise<RawAnswer> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.requestTimeoutMs), this.closing.signal]);
    const init: RequestInit = { method, headers, signal, redirect: "error" };
    if (body !== undefined) init.body = body;
    const res = await this.fetchImpl(url, init);
    const declared = Number(res.headers.get("content-length"));
    if (Number.isFinite(declared) && declared > limit) {
      await res.body?.cancel().catch(() => undefined);
      throw new ResponseTooLargeError(request, limit);
    }
    return { status: res.status, headers: res.headers, body: await readLimited(res, limit, request) };
  }

  private async wait(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.closing.signal });
    } catch {
      throw new Error("the homeserver client was closed while a request waited to retry");
    }
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
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
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

function withReason(json: Record<string, unknown>, reason: string | undefined): Record<string, unknown> {
  if (reason !== undefined) json.reason = reason;
  return json;
}
