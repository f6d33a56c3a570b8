import { PermanentError } from "../inbox/errors.js";

/**
 * A file larger than the bridge (media.maxBytes, or the maxBytes asked for) or the
 * homeserver (m.upload.size) accepts: one sent to Matrix, or a Matrix file being read. A
 * PermanentError: thrown out of a handler (an adapter relaying a Matrix user's file it could
 * not read), the event is not retried and its sender is told `userMessage` in the room.
 */
export class MediaTooLargeError extends PermanentError {
  override readonly name = "MediaTooLargeError";

  constructor(
    /** What the file is: its name, or the URL it came from. */
    readonly what: string,
    /** Its size in bytes, or undefined when reading stopped at the limit. */
    readonly size: number | undefined,
    readonly limit: number,
    /** Whose limit it is. */
    readonly limitOf: "bridge (media.maxBytes)" | "homeserver (m.upload.size)",
  ) {
    super(
      `the file is too large (${size === undefined ? `over ${megabytes(limit)}` : megabytes(size)}; ` +
        `the ${limitOf.startsWith("bridge") ? "bridge" : "homeserver"} takes at most ${megabytes(limit)})`,
    );
    // For the adapter and the logs: what, and whose limit (userMessage is for the sender).
    this.message = `${what} is too large: ${size === undefined ? `more than ${limit}` : size} bytes; the ${limitOf} allows ${limit}`;
  }
}

/** Bytes as a person reads them: "12.5 MB". */
function megabytes(bytes: number): string {
  return bytes >= 1_000_000 ? `${(bytes / 1_000_000).toFixed(1)} MB` : `${Math.ceil(bytes / 1000)} kB`;
}

/** A file that could not be fetched from its URL (bad scheme, HTTP error, too many redirects, timeout). */
export class MediaFetchError extends Error {
  override readonly name = "MediaFetchError";
}

/** An encrypted attachment that cannot be decrypted: bad key material, or a hash mismatch. */
export class MediaDecryptionError extends Error {
  override readonly name = "MediaDecryptionError";
}
