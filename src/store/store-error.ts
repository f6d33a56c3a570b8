/**
 * A storage operation failed: the backend refused, timed out or went away, or the store was
 * closed. The message names the store (password-masked URL), the operation and the key, and
 * never a password or token. `cause` is the backend's own error, when there is one.
 */
export class StoreError extends Error {
  override readonly name = "StoreError";
  constructor(
    /** The store's password-masked URL. */
    readonly store: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`store ${store}: ${message}`, options);
  }
}
