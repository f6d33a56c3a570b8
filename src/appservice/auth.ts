import { hash, timingSafeEqual } from "node:crypto";
import { MatrixHttpError } from "./errors.js";

/** Where a request's credentials come from. */
export interface Credentials {
  /** The `Authorization` header, if any. */
  authorization: string | undefined;
  /** The `access_token` query parameters (there may be several). */
  queryTokens: string[];
}

/** A secret's SHA-256 digest, kept instead of the secret for `matchesSecret`. */
export const secretDigest = (secret: string): Buffer => hash("sha256", secret, "buffer");

/**
 * Whether `presented` is the secret whose digest is `expected`, in constant time: digests
 * are compared, so neither the content nor the length of the secret shows in the timing.
 */
export const matchesSecret = (presented: string, expected: Buffer): boolean =>
  timingSafeEqual(secretDigest(presented), expected);

/**
 * Checks the homeserver's credentials against the registration's hs_token. Accepts
 * `Authorization: Bearer <token>` or `?access_token=<token>`; when both (or several query
 * tokens) are present they must all agree. No credentials: 401 `M_UNAUTHORIZED`; wrong or
 * disagreeing ones: 403 `M_FORBIDDEN`. Comparison is constant-time over SHA-256 digests;
 * no message ever contains a token.
 */
export class TokenChecker {
  private readonly expected: Buffer;

  constructor(hsToken: string) {
    if (hsToken === "") throw new TypeError("hs_token must not be empty");
    this.expected = secretDigest(hsToken);
  }

  check(credentials: Credentials): void {
    const presented = [...credentials.queryTokens];
    if (credentials.authorization !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(credentials.authorization);
      if (!match) {
        throw new MatrixHttpError(401, "M_UNAUTHORIZED", "the Authorization header is not a Bearer token");
      }
      presented.push(match[1]!);
    }
    if (presented.length === 0) {
      throw new MatrixHttpError(401, "M_UNAUTHORIZED", "missing access token");
    }
    // Check every token (no early exit), so timing does not reveal which one was wrong.
    let ok = true;
    for (const token of presented) ok = matchesSecret(token, this.expected) && ok;
    if (!ok) throw new MatrixHttpError(403, "M_FORBIDDEN", "invalid access token");
  }
}
