import { redactText } from "../common/logger.js";

/**
 * An error answer from the homeserver: its HTTP status, the Matrix `errcode` and `error`
 * text, and for rate limits how long it asked us to wait. The message names the request by
 * method and path only (never a query string, never a token).
 */
export class MatrixError extends Error {
  override readonly name = "MatrixError";

  constructor(
    /** The HTTP status, e.g. 403. */
    readonly status: number,
    /** The Matrix error code, e.g. "M_FORBIDDEN"; "M_UNKNOWN" when the body had none. */
    readonly errcode: string,
    /** The homeserver's human-readable text (tokens masked). */
    readonly error: string,
    /** The request, as "PUT /_matrix/client/v3/rooms/!r:hs/send/m.room.message/txn". */
    readonly request: string,
    /** How long the homeserver asked us to wait before retrying, when it said. */
    readonly retryAfterMs?: number,
  ) {
    super(`${request}: ${status} ${errcode}: ${redactText(error)}`);
  }

  /** True for 429 or `M_LIMIT_EXCEEDED`. */
  get isRateLimited(): boolean {
    return this.status === 429 || this.errcode === "M_LIMIT_EXCEEDED";
  }
}

/** The homeserver could not be reached (connection refused, reset, timed out) after every retry. */
export class HomeserverUnreachableError extends Error {
  override readonly name = "HomeserverUnreachableError";

  constructor(
    /** The request, as "METHOD /path" (no query string). */
    readonly request: string,
    /** How many attempts were made. */
    readonly attempts: number,
    cause: unknown,
  ) {
    super(`${request}: homeserver unreachable after ${attempts} attempt(s): ${describeCause(cause)}`, {
      cause,
    });
  }
}

function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return redactText(String(cause));
  const inner = cause.cause instanceof Error ? ` (${cause.cause.message})` : "";
  return redactText(`${cause.message}${inner}`);
}

/** The framework was asked to act as a user it may not: outside the users namespace and not the bot. */
export class UserNotInNamespaceError extends Error {
  override readonly name = "UserNotInNamespaceError";

  constructor(
    readonly userId: string,
    registrationId: string,
    botUserId: string,
  ) {
    super(
      `refusing to act as ${userId}: it is not in the users namespace of registration "${registrationId}" ` +
        `and is not its bot ${botUserId}`,
    );
  }
}

/** A homeserver answer larger than the client's `maxResponseBytes`; nothing more is read. */
export class ResponseTooLargeError extends Error {
  override readonly name = "ResponseTooLargeError";

  constructor(
    readonly request: string,
    readonly limitBytes: number,
  ) {
    super(`${request}: response is larger than the limit of ${limitBytes} bytes`);
  }
}
