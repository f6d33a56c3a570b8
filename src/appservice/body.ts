import type { IncomingMessage } from "node:http";
import { MatrixHttpError, notJson } from "./errors.js";

/** 16 MiB: 100 events of 64 KiB (Synapse's maximum) plus ephemeral data, with room to spare. */
export const DEFAULT_BODY_LIMIT_BYTES = 16 * 1024 * 1024;

const tooLarge = (limit: number) =>
  new MatrixHttpError(413, "M_TOO_LARGE", `the request body is larger than ${limit} bytes`);

/**
 * Reads a request body of at most `limit` bytes. A declared Content-Length over the limit
 * is refused before reading; an undeclared (chunked) body over the limit is read to its end
 * without being kept, so memory stays bounded and the client still gets its 413.
 */
export function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit));
  // Stream events rather than `for await`: the async iterator costs more than the rest of a
  // small request's handling.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      if (size > limit) reject(tooLarge(limit));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = () => {
      cleanup();
      reject(new MatrixHttpError(400, "M_BAD_JSON", "the request body was not received completely"));
    };
    // A client that hangs up mid-body emits "aborted"/"close" without "end" on some paths.
    const onClose = () => {
      if (!req.complete) onError();
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses a body as JSON whatever its Content-Type (Synapse's may vary). An empty body gives
 * `emptyAs` when given, else 400 `M_NOT_JSON`. Never echoes the body in the error.
 */
export function parseJsonBody(raw: Buffer, emptyAs?: unknown): unknown {
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw notJson("the request body is not valid UTF-8");
  }
  if (text.trim() === "") {
    if (emptyAs !== undefined) return emptyAs;
    throw notJson("the request body is empty; expected JSON");
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw notJson("the request body is not valid JSON");
  }
}
