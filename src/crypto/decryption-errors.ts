import { PermanentError, RetryableError } from "../inbox/errors.js";
import type { MatrixEvent } from "../matrix/events.js";
import type { CryptoSdk } from "./sdk.js";

/** What the sender of an event whose key never arrived is told (after the inbox's retries). */
export const KEY_WAIT_USER_MESSAGE =
  "the bridge could not decrypt this message: its key never reached the bridge's device";

/**
 * The inbox error for a failed decryption, so that nothing is dropped silently:
 * - the room key is not (yet) known, or not from this far back (MissingRoomKey,
 *   UnknownMessageIndex): a RetryableError: the event waits (its room's later events too)
 *   while to-device messages bring the key, then becomes a dead letter and its sender gets
 *   a notice;
 * - the key was withheld, or the sender or its device fails the checks (mismatched sender
 *   or keys, unsigned or unknown device, a broken encryption): a PermanentError at once,
 *   saying why.
 */
export function decryptionError(sdk: CryptoSdk, event: MatrixEvent, err: unknown): Error {
  const e = err as {
    code?: unknown;
    description?: unknown;
    withheldCode?: unknown;
    maybe_withheld?: unknown;
  };
  const code = typeof e.code === "number" ? e.code : undefined;
  const name = code === undefined ? "unknown" : (sdk.DecryptionErrorCode[code] ?? String(code));
  const description = typeof e.description === "string" ? e.description : String(err);
  const detail = `cannot decrypt ${event.event_id} in ${event.room_id} from ${event.sender}: ${name}: ${description}`;
  if (typeof e.withheldCode === "string") {
    const why = typeof e.maybe_withheld === "string" ? e.maybe_withheld : e.withheldCode;
    return new PermanentError(
      `the bridge could not decrypt this message: its sender withheld the key (${why})`,
      {
        cause: new Error(detail),
      },
    );
  }
  const { DecryptionErrorCode } = sdk;
  if (code === DecryptionErrorCode.MissingRoomKey || code === DecryptionErrorCode.UnknownMessageIndex)
    return new RetryableError(`${detail}; waiting for the key`, { userMessage: KEY_WAIT_USER_MESSAGE });
  return new PermanentError(`the bridge could not decrypt this message (${name})`, {
    cause: new Error(detail),
  });
}
