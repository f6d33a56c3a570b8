import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import { silentLogger, type Logger } from "../common/logger.js";
import { ValidationError } from "../common/validation-error.js";
import { HomeserverUnreachableError, MatrixError } from "../client/matrix-error.js";
import type { RoomEndpoints } from "../client/room-endpoints.js";
import type { ClientSendOptions } from "../client/types.js";
import { checkDoublePuppetRegistration } from "../registration/double-puppet.js";
import { NamespaceMatcher } from "../registration/namespaces.js";
import type { Registration } from "../registration/types.js";

/**
 * Double puppeting: a message that one of a user's own remote accounts sent from another
 * client appears in Matrix as the user themselves, not as their ghost. Two ways to act as a
 * real user, each checked once with `GET /account/whoami` before it is used:
 *
 * - the appservice method: the as_token of a second registration (`doublePuppet.registration`:
 *   url null, a non-exclusive users namespace covering the real users) with `?user_id=`;
 * - an access token the user handed over (stored by the caller; `withToken`).
 *
 * A failure is a DoublePuppetError whose message can be shown to the user as it is ("double
 * puppeting for @alice:example.org failed: the token belongs to @bob:example.org"); the
 * caller then sends as the ghost and tells the user. Tokens never reach a log or a message.
 */

/**
 * The content key that marks an event a bridge sent through double puppeting, with the
 * bridge's name as its value (the key mautrix bridges use): the bridge ignores such an event
 * when the homeserver pushes it back, so the remote network does not get its own message twice.
 */
export const DOUBLE_PUPPET_SOURCE_KEY = "fi.mau.double_puppet_source";

/** True if an event's content (or a receipt's data) carries this bridge's double-puppet mark. */
export function isDoublePuppetEcho(content: unknown, marker: string): boolean {
  return (
    typeof content === "object" &&
    content !== null &&
    (content as Record<string, unknown>)[DOUBLE_PUPPET_SOURCE_KEY] === marker
  );
}

export type DoublePuppetMethod = "appservice" | "token";

/**
 * Why double puppeting a user failed:
 * - unavailable: no method applies (no double-puppet registration covers the user and no token);
 * - not_allowed: the user is no real local user (one of the bridge's own, or of another server);
 * - wrong_user: whoami named someone else;
 * - refused: the homeserver refused the token or the registration (e.g. M_UNKNOWN_TOKEN,
 *   or an application service the homeserver did not load);
 * - unreachable: the homeserver could not be asked;
 * - invalidated: a puppet in use got M_UNKNOWN_TOKEN (a token revoked, a registration removed).
 */
export type DoublePuppetFailure =
  "unavailable" | "not_allowed" | "wrong_user" | "refused" | "unreachable" | "invalidated";

/** Double puppeting for a user is not possible now; the message names the user and why, never a token. */
export class DoublePuppetError extends Error {
  override readonly name = "DoublePuppetError";

  constructor(
    readonly userId: string,
    readonly failure: DoublePuppetFailure,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`double puppeting for ${userId} failed: ${reason}`, options);
  }
}

/** What a PuppetIntent tells its DoublePuppets. */
interface PuppetOwner {
  invalidate(puppet: PuppetIntent): void;
}

/**
 * A real user the bridge acts as, verified with whoami, made by DoublePuppets. Sends keep
 * their place in the room's order with the bridge client's own sends. When the homeserver
 * answers M_UNKNOWN_TOKEN, the puppet is invalid from then on: that call and every later
 * one throws DoublePuppetError ("invalidated"), and DoublePuppets forgets it, so the next
 * request for the user checks again. Other homeserver errors (not in the room, forbidden)
 * are thrown as they are.
 */
export class PuppetIntent {
  #valid = true;

  /** @internal Made by DoublePuppets. */
  constructor(
    readonly userId: string,
    readonly method: DoublePuppetMethod,
    private readonly endpoints: RoomEndpoints,
    private readonly marker: string | undefined,
    private readonly owner: PuppetOwner,
  ) {}

  /** False once the homeserver stopped accepting the puppet's token. */
  get valid(): boolean {
    return this.#valid;
  }

  /**
   * Sends a message event as the user; returns its event id. `ts` sets origin_server_ts
   * with the appservice method only (the homeserver ignores it for a user's own token).
   */
  sendEvent(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    opts: ClientSendOptions = {},
  ): Promise<string> {
    const sendOpts = this.method === "token" ? withoutTs(opts) : opts;
    return this.guard(() =>
      this.endpoints.sendEvent(this.userId, roomId, type, this.marked(content), sendOpts),
    );
  }

  sendMessage(
    roomId: string,
    content: Record<string, unknown>,
    opts: ClientSendOptions = {},
  ): Promise<string> {
    return this.sendEvent(roomId, "m.room.message", content, opts);
  }

  sendText(roomId: string, body: string, opts: ClientSendOptions = {}): Promise<string> {
    return this.sendMessage(roomId, { msgtype: "m.text", body }, opts);
  }

  /** Reacts to an event with `key` (an emoji, usually); returns the reaction's event id. */
  sendReaction(roomId: string, eventId: string, key: string, opts: ClientSendOptions = {}): Promise<string> {
    return this.sendEvent(
      roomId,
      "m.reaction",
      { "m.relates_to": { rel_type: "m.annotation", event_id: eventId, key } },
      opts,
    );
  }

  /** Redacts an event (the user's own, or another's where their power level allows); returns the redaction's id. */
  redact(roomId: string, eventId: string, opts: { reason?: string; txnId?: string } = {}): Promise<string> {
    return this.guard(() =>
      this.endpoints.redact(this.userId, roomId, eventId, { ...opts, content: this.marked({}) }),
    );
  }

  /** Marks an event read as the user. */
  sendReadReceipt(roomId: string, eventId: string): Promise<void> {
    return this.guard(() => this.endpoints.sendReadReceipt(this.userId, roomId, eventId, this.marked({})));
  }

  /** Joins a room by id or alias as the user (e.g. accepting an invite); returns the room id. */
  join(roomIdOrAlias: string, viaServers: readonly string[] = []): Promise<string> {
    return this.guard(() => this.endpoints.joinRoom(this.userId, roomIdOrAlias, viaServers));
  }

  /** @internal Asks the homeserver who the puppet is; DoublePuppets' check. */
  whoami(): Promise<{ user_id: string }> {
    return this.endpoints.whoami(this.userId);
  }

  private marked(content: Record<string, unknown>): Record<string, unknown> {
    return this.marker === undefined ? content : { ...content, [DOUBLE_PUPPET_SOURCE_KEY]: this.marker };
  }

  private async guard<T>(call: () => Promise<T>): Promise<T> {
    if (!this.#valid) throw this.invalidated();
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof MatrixError) || err.errcode !== "M_UNKNOWN_TOKEN") throw err;
      this.#valid = false;
      this.owner.invalidate(this);
      throw this.invalidated(err);
    }
  }

  private invalidated(cause?: unknown): DoublePuppetError {
    const what = this.method === "token" ? "the token" : "the double-puppet registration";
    return new DoublePuppetError(
      this.userId,
      "invalidated",
      `the homeserver no longer accepts ${what} (M_UNKNOWN_TOKEN)`,
      cause === undefined ? undefined : { cause },
    );
  }
}

export interface DoublePuppetsOptions {
  /**
   * The bridge's client (a HomeserverClient). Puppets share its request queue, retries and
   * hooks, and the order of sends per room; its users (ghosts, bot) are never double-puppeted.
   */
  client: RoomEndpoints;
  /**
   * The double-puppet registration (`doublePuppet.registration`, loaded), if one is configured.
   * Refused (ValidationError) if it is unfit: a url, an exclusive entry, a namespace that does
   * not cover the homeserver's users.
   */
  registration?: Registration;
  /**
   * Marks every event, redaction and receipt a puppet sends with DOUBLE_PUPPET_SOURCE_KEY:
   * this value (the bridge's name), so that the bridge recognises its own puppets' events
   * when the homeserver pushes them back (isDoublePuppetEcho). Default: no mark.
   */
  marker?: string;
  /** Verified puppets kept (LRU, both methods together). Default 1000. */
  cacheSize?: number;
  logger?: Logger;
}

interface CacheEntry {
  /** The check, shared by concurrent callers; removed when it fails. */
  promise: Promise<PuppetIntent>;
  /** The puppet, once checked. */
  puppet?: PuppetIntent;
  /** For the token method: a digest of the token, to see when the user hands over another. */
  tokenDigest?: string;
}

/**
 * Acts as real users of the homeserver. `appservice(userId)` uses the double-puppet
 * registration; `withToken(userId, token)` a token the user handed over; `puppet(userId,
 * token?)` the first that applies. Each puppet is checked once with whoami, then kept in a
 * bounded LRU; concurrent requests for one user share one check. The bridge's main as_token
 * never acts as a real user: the appservice method uses the second registration's as_token
 * and namespace, the token method the user's token and no `?user_id=`.
 */
export class DoublePuppets {
  readonly domain: string;
  private readonly client: RoomEndpoints;
  /** Only the id is kept: an inspected DoublePuppets must not show the as_token. */
  private readonly registrationId: string | undefined;
  private readonly matcher: NamespaceMatcher | undefined;
  private readonly appserviceEndpoints: RoomEndpoints | undefined;
  private readonly marker: string | undefined;
  private readonly log: Logger;
  private readonly cache: LRUCache<string, CacheEntry>;

  constructor(opts: DoublePuppetsOptions) {
    this.client = opts.client;
    this.domain = opts.client.matcher.domain;
    const registration = opts.registration;
    if (registration !== undefined) {
      const problems = checkDoublePuppetRegistration(registration, { domain: this.domain });
      if (problems.length > 0) throw new ValidationError("double-puppet registration", problems);
      this.registrationId = registration.id;
      this.matcher = new NamespaceMatcher(registration, this.domain);
      this.appserviceEndpoints = this.client.asRegistration(registration);
    }
    this.marker = opts.marker;
    this.log = opts.logger ?? silentLogger();
    const max = opts.cacheSize ?? 1000;
    if (!Number.isInteger(max) || max < 1)
      throw new TypeError(`cacheSize must be an integer >= 1, got ${max}`);
    this.cache = new LRUCache({ max });
  }

  /** True if the appservice method applies: a double-puppet registration covers this real user. */
  covers(userId: string): boolean {
    return this.matcher !== undefined && this.matcher.isUserInNamespace(userId) && !this.isOwnUser(userId);
  }

  /** The appservice method: the double-puppet registration's as_token with `?user_id=`. */
  async appservice(userId: string): Promise<PuppetIntent> {
    this.assertRealLocalUser(userId);
    if (this.matcher === undefined || this.appserviceEndpoints === undefined) {
      throw new DoublePuppetError(
        userId,
        "unavailable",
        "no double-puppet registration is configured (doublePuppet.registration)",
      );
    }
    if (!this.matcher.isUserInNamespace(userId)) {
      throw new DoublePuppetError(
        userId,
        "unavailable",
        `${userId} is outside the users namespace of the double-puppet registration "${this.registrationId}"`,
      );
    }
    const endpoints = this.appserviceEndpoints;
    return this.cached(`appservice ${userId}`, undefined, () => this.verify(userId, "appservice", endpoints));
  }

  /**
   * The token method: acts with an access token the user handed over (no `?user_id=`).
   * A different token for the same user is checked anew and replaces the cached puppet.
   */
  async withToken(userId: string, token: string): Promise<PuppetIntent> {
    this.assertRealLocalUser(userId);
    if (typeof token !== "string" || token.trim() === "") {
      throw new DoublePuppetError(userId, "unavailable", "the token is empty");
    }
    const digest = createHash("sha256").update(token).digest("hex");
    return this.cached(`token ${userId}`, digest, () =>
      this.verify(userId, "token", this.client.asUserToken(userId, token)),
    );
  }

  /**
   * The appservice method when the registration covers the user, else the user's token when
   * one is given; else DoublePuppetError ("unavailable").
   */
  async puppet(userId: string, token?: string): Promise<PuppetIntent> {
    if (this.covers(userId)) return this.appservice(userId);
    if (token !== undefined) return this.withToken(userId, token);
    this.assertRealLocalUser(userId);
    throw new DoublePuppetError(
      userId,
      "unavailable",
      this.matcher === undefined
        ? "no double-puppet registration is configured and the user gave no token"
        : `${userId} is outside the double-puppet registration's namespace and gave no token`,
    );
  }

  /** Forgets a user's cached puppets (both methods), e.g. at logout or when they take their token back. */
  forget(userId: string): void {
    this.cache.delete(`appservice ${userId}`);
    this.cache.delete(`token ${userId}`);
  }

  /** How many puppets (or checks under way) the LRU holds. */
  get size(): number {
    return this.cache.size;
  }

  /** @internal A puppet got M_UNKNOWN_TOKEN: forget it, unless a newer one took its place. */
  invalidate(puppet: PuppetIntent): void {
    const key = `${puppet.method} ${puppet.userId}`;
    if (this.cache.peek(key)?.puppet === puppet) this.cache.delete(key);
    this.log.warn({ userId: puppet.userId, method: puppet.method }, "double puppet no longer accepted");
  }

  private isOwnUser(userId: string): boolean {
    return this.client.matcher.mayActAs(userId);
  }

  /** Throws DoublePuppetError (not_allowed) for a ghost, the bot, or a user of another server. */
  private assertRealLocalUser(userId: string): void {
    if (typeof userId !== "string" || !/^@[^:]+:.+$/.test(userId)) {
      throw new DoublePuppetError(String(userId), "not_allowed", "it is not a Matrix user id");
    }
    if (this.isOwnUser(userId)) {
      throw new DoublePuppetError(
        userId,
        "not_allowed",
        `${userId} is one of the bridge's own users, not a real user`,
      );
    }
    if (userId.slice(userId.indexOf(":") + 1) !== this.domain) {
      throw new DoublePuppetError(
        userId,
        "not_allowed",
        `${userId} is not a user of ${this.domain}, the homeserver this bridge talks to`,
      );
    }
  }

  private cached(
    key: string,
    tokenDigest: string | undefined,
    check: () => Promise<PuppetIntent>,
  ): Promise<PuppetIntent> {
    const existing = this.cache.get(key);
    if (existing !== undefined && existing.tokenDigest === tokenDigest) return existing.promise;
    const entry: CacheEntry = { promise: check() };
    if (tokenDigest !== undefined) entry.tokenDigest = tokenDigest;
    this.cache.set(key, entry);
    entry.promise.then(
      (puppet) => (entry.puppet = puppet),
      () => {
        if (this.cache.peek(key) === entry) this.cache.delete(key);
      },
    );
    return entry.promise;
  }

  /** whoami through the puppet's own endpoints: it must name the user. */
  private async verify(
    userId: string,
    method: DoublePuppetMethod,
    endpoints: RoomEndpoints,
  ): Promise<PuppetIntent> {
    const puppet = new PuppetIntent(userId, method, endpoints, this.marker, this);
    let answer: { user_id: string };
    try {
      answer = await puppet.whoami();
    } catch (err) {
      const failure = describeCheckFailure(userId, method, err);
      this.log.warn({ userId, method, err: failure.message }, "double puppet check failed");
      throw failure;
    }
    if (answer.user_id !== userId) {
      const whose =
        method === "token" ? "the token belongs to" : "the homeserver says the registration acts as";
      this.log.warn({ userId, method, whoami: answer.user_id }, "double puppet check failed: another user");
      throw new DoublePuppetError(userId, "wrong_user", `${whose} ${String(answer.user_id)}`);
    }
    this.log.debug({ userId, method }, "double puppet checked");
    return puppet;
  }
}

function describeCheckFailure(userId: string, method: DoublePuppetMethod, err: unknown): DoublePuppetError {
  const what = method === "token" ? "the token" : "the double-puppet registration";
  if (err instanceof MatrixError) {
    return new DoublePuppetError(
      userId,
      "refused",
      `the homeserver refused ${what}: ${err.status} ${err.errcode}: ${err.error}`,
      { cause: err },
    );
  }
  if (err instanceof HomeserverUnreachableError) {
    return new DoublePuppetError(userId, "unreachable", `${what} could not be checked: ${err.message}`, {
      cause: err,
    });
  }
  return new DoublePuppetError(userId, "refused", `${what} could not be checked: ${String(err)}`, {
    cause: err,
  });
}

function withoutTs(opts: ClientSendOptions): ClientSendOptions {
  const { ts: _ts, ...rest } = opts;
  return rest;
}
