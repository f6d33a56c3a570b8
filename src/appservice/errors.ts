/**
 * An error answered to the homeserver as `{errcode, error}` with an HTTP status. The message
 * is sent as is, so it must name what was wrong without echoing secrets or large values.
 */
export class MatrixHttpError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
    /** Extra response headers, e.g. `Allow` on a 405. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "MatrixHttpError";
  }

  /** The JSON body of the response. */
  toJSON(): { errcode: string; error: string } {
    return { errcode: this.errcode, error: this.message };
  }
}

export const badJson = (message: string) => new MatrixHttpError(400, "M_BAD_JSON", message);
export const notJson = (message: string) => new MatrixHttpError(400, "M_NOT_JSON", message);
export const invalidParam = (message: string) => new MatrixHttpError(400, "M_INVALID_PARAM", message);
export const notFound = (message: string) => new MatrixHttpError(404, "M_NOT_FOUND", message);

/** Thrown when one or more handlers failed; the homeserver should retry the transaction. */
export class TransactionFailedError extends Error {
  constructor(
    readonly transactionId: string,
    readonly failures: number,
  ) {
    super(`${failures} handler(s) failed in this transaction; it will be retried`);
    this.name = "TransactionFailedError";
  }
}

/** A handler did not settle within the configured timeout. */
export class HandlerTimeoutError extends Error {
  constructor(
    readonly handler: string,
    readonly timeoutMs: number,
  ) {
    super(`${handler} did not settle within ${timeoutMs} ms`);
    this.name = "HandlerTimeoutError";
  }
}
