/** A Matrix file over the size limit (media.maxBytes, or the maxBytes asked for). */
export class MediaTooLargeError extends Error {
  override readonly name = "MediaTooLargeError";

  constructor(
    /** The mxc:// URL. */
    readonly media: string,
    readonly limitBytes: number,
  ) {
    super(`${media} is larger than ${limitBytes} bytes (the limit; see media.maxBytes)`);
  }
}

/** An encrypted attachment that cannot be decrypted: bad key material, or a hash mismatch. */
export class MediaDecryptionError extends Error {
  override readonly name = "MediaDecryptionError";
}
