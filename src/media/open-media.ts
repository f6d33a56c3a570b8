/**
 * ctx.openMedia's rules, whatever serves the bytes (the homeserver, or a test double): the
 * mxc:// URL of a string or of MatrixMedia (a file or its thumbnail), the size cap (declared
 * size up front, bytes read while streaming), decryption of an encrypted one.
 */
import type { MatrixMedia, OpenedMedia } from "../adapter/adapter.js";
import { decryptAttachment } from "./decrypt.js";
import { MediaTooLargeError } from "./errors.js";
import { sizeCap } from "./size-cap.js";

/** The default of config media.maxBytes: 100 MiB. */
export const DEFAULT_MEDIA_MAX_BYTES = 100 * 1024 * 1024;

export interface OpenMediaOptions {
  /** Refuse more than this many bytes. */
  maxBytes?: number;
  /** A thumbnail of about this size instead of the file. */
  thumbnail?: { width: number; height: number };
  signal?: AbortSignal;
}

/**
 * Fetches the bytes stored at an mxc:// URL, as stored (ciphertext for an encrypted file).
 * `maxBytes` is for refusing early (a declared Content-Length over it may throw
 * MediaTooLargeError); openMedia caps the stream whatever the source does.
 */
export type MediaSource = (
  mxc: string,
  opts: { maxBytes: number; thumbnail?: { width: number; height: number }; signal?: AbortSignal },
) => Promise<OpenedMedia>;

const MXC = /^mxc:\/\/([^/]+)\/([^/?#]+)$/;

/** The server name and media id of an mxc:// URL; TypeError for anything else. */
export function parseMxc(mxc: string): { server: string; mediaId: string } {
  const m = typeof mxc === "string" ? MXC.exec(mxc) : null;
  if (!m) throw new TypeError(`"${String(mxc)}" is not an mxc:// URI (mxc://server/mediaId)`);
  return { server: m[1]!, mediaId: m[2]! };
}

function checkLimit(maxBytes: number): number {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1)
    throw new TypeError(`maxBytes must be a positive integer, got ${String(maxBytes)}`);
  return maxBytes;
}

/** Opens a Matrix file through `source`; see BridgeContext.openMedia. */
export async function openMedia(
  source: MediaSource,
  media: string | MatrixMedia,
  opts: OpenMediaOptions,
  defaultMaxBytes: number,
): Promise<OpenedMedia> {
  const file = typeof media === "string" ? undefined : media;
  const url = file?.url ?? (media as string);
  parseMxc(url);
  const maxBytes = checkLimit(opts.maxBytes ?? defaultMaxBytes);
  const encrypted = file?.encrypted === true;
  if (encrypted && opts.thumbnail !== undefined) {
    throw new TypeError(
      `${url} is encrypted: the homeserver cannot make a thumbnail of it (open the sender's file.thumbnail instead)`,
    );
  }
  // Checked before any I/O: a file whose keys are unusable fails at the call.
  const decrypt = encrypted ? decryptAttachment(file?.encryption) : undefined;
  const asked: Parameters<MediaSource>[1] = { maxBytes };
  if (opts.thumbnail !== undefined) asked.thumbnail = opts.thumbnail;
  if (opts.signal !== undefined) asked.signal = opts.signal;
  const raw = await source(url, asked);
  if (raw.size !== undefined && raw.size > maxBytes) {
    await raw.stream.cancel().catch(() => undefined);
    throw new MediaTooLargeError(url, undefined, maxBytes, "bridge (media.maxBytes)");
  }
  const capped = raw.stream.pipeThrough(sizeCap(url, maxBytes));
  const out: OpenedMedia = {
    stream: decrypt ? capped.pipeThrough(decrypt) : capped,
    contentType: encrypted ? (file?.mimetype ?? "application/octet-stream") : raw.contentType,
  };
  if (raw.size !== undefined) out.size = raw.size;
  return out;
}
