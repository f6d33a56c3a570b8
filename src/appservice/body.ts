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
export async function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      const buf = chunk as Buffer;
      size += buf.length;
      if (size <= limit) chunks.push(buf);
    }
  } catch {
    throw new MatrixHttpError(400, "M_BAD_JSON", "the request body was not received completely");
  }
  if (size > limit) throw tooLarge(limit);
  return Buffer.concat(chunks, size);
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
