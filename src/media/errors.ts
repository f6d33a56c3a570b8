/**
 * A file larger than the bridge (media.maxBytes, or the maxBytes asked for) or the
 * homeserver (m.upload.size) accepts: one sent to Matrix, or a Matrix file being read.
 */
export class MediaTooLargeError extends Error {
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
      `${what} is too large: ${size === undefined ? `more than ${limit}` : size} bytes; the ${limitOf} allows ${limit}`,
    );
  }
}

/** A file that could not be fetched from its URL (bad scheme, HTTP error, too many redirects, timeout). */
export class MediaFetchError extends Error {
  override readonly name = "MediaFetchError";
}

/** An encrypted attachment that cannot be decrypted: bad key material, or a hash mismatch. */
export class MediaDecryptionError extends Error {
  override readonly name = "MediaDecryptionError";
}
