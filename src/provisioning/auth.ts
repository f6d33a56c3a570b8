/**
 * Who a provisioning request is for. `Authorization: Bearer <token>` carries one of:
 * - the bridge's shared secret (compared in constant time): the request acts for `?user_id=`;
 * - a Matrix access token, checked with the homeserver's `GET /_matrix/client/v3/account/whoami`;
 * - `openid:<token>`, an OpenID token checked with the homeserver's
 *   `GET /_matrix/federation/v1/openid/userinfo`.
 * A token's owner acts for themselves (`?user_id=` must name them) or, when an admin, for
 * whoever `?user_id=` names (mautrix has no admins acting for others; with it a token must
 * belong to `user_id`). The user acted for must be allowed to log in (`user` or `admin`;
 * mautrix refuses users without its login permission the same way).
 *
 * Positive homeserver answers are remembered briefly in a bounded LRU keyed by the token's
 * SHA-256, never the token. No token is ever logged or put in an error message.
 */
import { hash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { PermissionLevel } from "../adapter/adapter.js";
import { invalidParam } from "../appservice/errors.js";
import { matchesSecret, secretDigest } from "../appservice/auth.js";
import { redactText, type Logger } from "../common/logger.js";
import { forbidden, homeserverUnavailable, missingParam, missingToken, unknownToken } from "./errors.js";
import type { ProvisioningCaller } from "./service.js";

export interface ProvisioningAuthOptions {
  sharedSecret: string;
  /** The homeserver's client-server URL, e.g. "https://matrix.example.org". */
  homeserverUrl: string;
  /** The service's permission lookup (no I/O). */
  permission(userId: string): PermissionLevel | null;
  fetch: typeof globalThis.fetch;
  log: Logger;
  /** How long a positive homeserver answer is remembered. */
  cacheTtlMs: number;
  /** How many tokens are remembered at most. */
  cacheMax: number;
  /** How long one check with the homeserver may take. */
  timeoutMs: number;
}

/** A user id as Matrix writes one: `@localpart:server`, at most 255 characters. */
const USER_ID = /^@[^:\s\p{Cc}]+:[^\s\p{Cc}]+$/u;
export const isUserId = (value: string): boolean => value.length <= 255 && USER_ID.test(value);

const OPENID_PREFIX = "openid:";

/** The two ways a homeserver vouches for a token: the path asked and the answer's user id field. */
type TokenKind = "access_token" | "openid";

export class ProvisioningAuth {
  private readonly secret: Buffer;
  private readonly homeserverUrl: string;
  /** sha256(token) -> the user the homeserver said it belongs to. */
  private readonly owners: LRUCache<string, string>;
  /** Checks under way, so that concurrent requests with one token ask the homeserver once. */
  private readonly pending = new Map<string, Promise<string>>();

  constructor(private readonly opts: ProvisioningAuthOptions) {
    this.secret = secretDigest(opts.sharedSecret);
    this.homeserverUrl = opts.homeserverUrl.replace(/\/+$/, "");
    this.owners = new LRUCache({ max: opts.cacheMax, ttl: opts.cacheTtlMs });
  }

  /** How many token owners are remembered now (tests). */
  get cachedTokens(): number {
    return this.owners.size;
  }

  /** The caller of a request, or a MatrixHttpError (401, 400, 403, 502) saying why not. */
  async authenticate(authorization: string, querystring: string): Promise<ProvisioningCaller> {
    const token = bearerToken(authorization);
    const userId = targetUserId(querystring);
    if (matchesSecret(token, this.secret)) return this.callerFor(userId);
    const owner = await this.tokenOwner(token);
    if (owner !== userId) {
      if (this.opts.permission(owner) !== "admin") {
        throw forbidden(
          `this token belongs to ${owner}, not ${userId}; only an admin may act for another user`,
        );
      }
      this.opts.log.info({ admin: owner, userId }, "provisioning: an admin acts for another user");
    }
    return this.callerFor(userId);
  }

  private callerFor(userId: string): ProvisioningCaller {
    const permission = this.opts.permission(userId);
    if (permission === null || permission === "relay") {
      throw forbidden(`${userId} may not log in to this bridge`);
    }
    return { userId, permission };
  }

  private async tokenOwner(token: string): Promise<string> {
    const key = hash("sha256", token, "base64url");
    const cached = this.owners.get(key);
    if (cached !== undefined) return cached;
    let check = this.pending.get(key);
    if (!check) {
      check = this.askHomeserver(token).finally(() => this.pending.delete(key));
      this.pending.set(key, check);
    }
    const owner = await check;
    this.owners.set(key, owner);
    return owner;
  }

  /** The token's owner by the homeserver's word; 401 when it refuses the token, 502 when it cannot say. */
  private async askHomeserver(token: string): Promise<string> {
    const kind: TokenKind = token.startsWith(OPENID_PREFIX) ? "openid" : "access_token";
    let url: URL;
    const headers: Record<string, string> = {};
    if (kind === "openid") {
      url = new URL(`${this.homeserverUrl}/_matrix/federation/v1/openid/userinfo`);
      url.searchParams.set("access_token", token.slice(OPENID_PREFIX.length));
    } else {
      url = new URL(`${this.homeserverUrl}/_matrix/client/v3/account/whoami`);
      headers.Authorization = `Bearer ${token}`;
    }
    let response: Response;
    try {
      response = await this.opts.fetch(url, { headers, signal: AbortSignal.timeout(this.opts.timeoutMs) });
    } catch (err) {
      this.opts.log.warn(
        { kind, error: redactText(describe(err)) },
        "provisioning: the homeserver could not be asked about a token",
      );
      throw homeserverUnavailable();
    }
    const body = await readJson(response);
    if (response.status >= 400 && response.status < 500 && response.status !== 429) {
      this.opts.log.info({ kind, status: response.status }, "provisioning: the homeserver refused a token");
      throw unknownToken("Invalid auth token");
    }
    const owner = (body as Record<string, unknown> | undefined)?.[kind === "openid" ? "sub" : "user_id"];
    if (!response.ok || typeof owner !== "string" || !isUserId(owner)) {
      this.opts.log.warn(
        { kind, status: response.status },
        "provisioning: the homeserver gave no usable answer about a token",
      );
      throw homeserverUnavailable();
    }
    return owner;
  }
}

/** The token of `Authorization: Bearer <token>`; 401 M_MISSING_TOKEN without one. */
function bearerToken(authorization: string): string {
  if (authorization === "") throw missingToken("Missing auth token");
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!match) throw missingToken("the Authorization header is not a Bearer token");
  return match[1]!;
}

/** `?user_id=`: whom the request is for; 400 when it is missing, repeated or not a user id. */
function targetUserId(querystring: string): string {
  const values = new URLSearchParams(querystring).getAll("user_id");
  if (values.length === 0 || values[0] === "") {
    throw missingParam("the user_id query parameter is required (?user_id=@you:example.org)");
  }
  if (values.length > 1) throw invalidParam("the user_id query parameter is given more than once");
  if (!isUserId(values[0]!)) throw invalidParam("user_id is not a Matrix user id such as @you:example.org");
  return values[0]!;
}

/** The JSON body of a response, or undefined; never throws. */
async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.name}: ${err.message}${cause}`;
}
