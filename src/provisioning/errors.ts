/**
 * The provisioning API's errors: `{errcode, error}` JSON with the status codes of mautrix-go's
 * bridgev2 provisioning API, so that the managers written for it read ours the same way.
 */
import { MatrixHttpError } from "../appservice/errors.js";
import { UserFacingError } from "../users/errors.js";

/**
 * UserFacingError codes as answered. mautrix's own: M_NOT_FOUND 404 (unknown login, login
 * process or flow), M_BAD_STATE (a step of another type; 400 as its OpenAPI file says, where
 * its code sends 500 for want of a status), M_INVALID_PARAM 400, M_FORBIDDEN 403 and
 * M_UNRECOGNIZED 404 (what the bridge cannot do; its OpenAPI file says 501, its code sends 404).
 * mautrix has no conflict: 409 M_USER_IN_USE (that remote account is taken).
 */
const USER_FACING: Record<UserFacingError["code"], [status: number, errcode: string]> = {
  not_found: [404, "M_NOT_FOUND"],
  bad_state: [400, "M_BAD_STATE"],
  bad_input: [400, "M_INVALID_PARAM"],
  forbidden: [403, "M_FORBIDDEN"],
  unsupported: [404, "M_UNRECOGNIZED"],
  conflict: [409, "M_USER_IN_USE"],
};

/** The answer for an error a handler threw, or undefined for one that is a bug (a 500). */
export function httpErrorFor(err: unknown): MatrixHttpError | undefined {
  if (err instanceof MatrixHttpError) return err;
  if (err instanceof UserFacingError) {
    const [status, errcode] = USER_FACING[err.code];
    return new MatrixHttpError(status, errcode, err.message);
  }
  return undefined;
}

export const missingToken = (message: string) => new MatrixHttpError(401, "M_MISSING_TOKEN", message);
export const unknownToken = (message: string) => new MatrixHttpError(401, "M_UNKNOWN_TOKEN", message);
export const forbidden = (message: string) => new MatrixHttpError(403, "M_FORBIDDEN", message);
export const missingParam = (message: string) => new MatrixHttpError(400, "M_MISSING_PARAM", message);
/** The homeserver could not say whether a token is good (down, 5xx, rate-limited, garbled). */
export const homeserverUnavailable = () =>
  new MatrixHttpError(502, "M_UNKNOWN", "could not check the token with the homeserver; try again later");
/** mautrix's answer for a step submitted to a finished login process. */
export const loginAlreadyFinished = () =>
  new MatrixHttpError(410, "FI.MAU.BRIDGE.LOGIN_ALREADY_FINISHED", "Login process was already finished");
