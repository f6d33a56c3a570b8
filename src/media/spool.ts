/**
 * Reads an attachment's source (bytes, a stream, an async iterable or an http(s) URL) once
 * into a file of the spool folder, hashing it (sha256) and counting its bytes against a cap
 * on the way; a source over the cap is refused (MediaTooLargeError) and leaves no file. The
 * first 64 KiB are kept for sniffing and image headers.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdir, open, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Attachment } from "../adapter/adapter.js";
import { MediaTooLargeError } from "./errors.js";
import { fetchUrl, type FetchLimits } from "./fetch-url.js";

/** How much of the file's start is kept in memory for sniffing (JPEG headers may sit after EXIF). */
export const HEAD_BYTES = 64 * 1024;

export interface SpooledFile {
  path: string;
  sha256: string;
  size: number;
  /** The file's first bytes (up to HEAD_BYTES). */
  head: Uint8Array;
  /** The Content-Type a fetched URL was served with. */
  servedType?: string;
}

export interface SpoolOptions extends Omit<FetchLimits, "maxBytes"> {
  dir: string;
  maxBytes: number;
}

function chunksOf(
  source: Attachment["source"],
): AsyncIterable<Uint8Array> | Iterable<Uint8Array> | undefined {
  if (source instanceof Uint8Array) return [source];
  if (source instanceof URL) return undefined;
  if (typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === "function")
    return source as AsyncIterable<Uint8Array>;
  if (typeof (source as ReadableStream<Uint8Array>).getReader === "function") {
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return;
            yield value;
          }
        } finally {
          await reader.cancel().catch(() => undefined);
        }
      },
    };
  }
  throw new TypeError(
    `attachment source must be a Uint8Array, a ReadableStream, an async iterable of bytes or a URL, got ${typeof source}`,
  );
}

export async function spool(
  source: Attachment["source"],
  what: string,
  o: SpoolOptions,
): Promise<SpooledFile> {
  let chunks = chunksOf(source);
  let servedType: string | undefined;
  if (chunks === undefined) {
    const fetched = await fetchUrl(source as URL, { ...o });
    chunks = chunksOf(fetched.body)!;
    servedType = fetched.contentType;
  }
  await mkdir(o.dir, { recursive: true });
  const path = join(o.dir, `${randomUUID()}.spool`);
  const file = await open(path, "wx");
  const hash = createHash("sha256");
  const head = new Uint8Array(HEAD_BYTES);
  let size = 0;
  try {
    for await (const chunk of chunks) {
      if (!(chunk instanceof Uint8Array))
        throw new TypeError(`attachment stream of ${what} gave a ${typeof chunk}, not bytes (Uint8Array)`);
      if (size + chunk.length > o.maxBytes)
        throw new MediaTooLargeError(what, undefined, o.maxBytes, "bridge (media.maxBytes)");
      if (size < HEAD_BYTES) head.set(chunk.subarray(0, HEAD_BYTES - size), size);
      hash.update(chunk);
      await file.write(chunk);
      size += chunk.length;
    }
    await file.sync();
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(path, { force: true });
    throw err;
  }
  await file.close();
  const out: SpooledFile = {
    path,
    sha256: hash.digest("hex"),
    size,
    head: head.slice(0, Math.min(size, HEAD_BYTES)),
  };
  if (servedType !== undefined) out.servedType = servedType;
  return out;
}

/**
 * Deletes the spool files nothing refers to any more: left by a crash between reading an
 * attachment and queueing it. Only `*.spool` files directly in `dir`; `keep` holds the paths
 * still queued. Call it before anything can spool (at start, before the adapter runs).
 * Returns how many it deleted; a missing folder is an empty one.
 */
export async function sweepSpool(dir: string, keep: ReadonlySet<string>): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
  let deleted = 0;
  for (const name of names) {
    const path = join(dir, name);
    if (!name.endsWith(".spool") || keep.has(path)) continue;
    await rm(path, { force: true });
    deleted++;
  }
  return deleted;
}
