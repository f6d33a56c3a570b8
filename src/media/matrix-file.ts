/**
 * The file of a Matrix media message (m.image, m.file, m.audio, m.video, m.sticker) as the
 * adapter contract speaks it (MatrixFile). Pure: no I/O.
 */
import type { MatrixFile, MatrixMedia } from "../adapter/adapter.js";
import type { JsonValue } from "../store/json.js";

/** Message types that carry a file. */
export const FILE_MSGTYPES: ReadonlySet<string> = new Set([
  "m.image",
  "m.file",
  "m.audio",
  "m.video",
  "m.sticker",
]);

function obj(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/**
 * The file a message's content carries, or undefined when it carries none (no `url` and no
 * `file.url`). `msgtype` is the content's msgtype ("m.sticker" for an m.sticker event).
 * The name is `filename`, else `body` (when `filename` is set and differs from `body`, the
 * body is a caption).
 */
export function matrixFileOf(msgtype: string, content: Record<string, unknown>): MatrixFile | undefined {
  if (!FILE_MSGTYPES.has(msgtype)) return undefined;
  const info = obj(content.info);
  const media = mediaOf(content.url, content.file, info);
  if (media === undefined) return undefined;
  const file: MatrixFile = { ...media, name: str(content.filename) ?? str(content.body) ?? "file" };
  const durationMs = count(info?.duration);
  if (durationMs !== undefined) file.durationMs = durationMs;
  const thumbnail = info
    ? mediaOf(info.thumbnail_url, info.thumbnail_file, obj(info.thumbnail_info))
    : undefined;
  if (thumbnail !== undefined) {
    file.thumbnail = thumbnail;
    if (!thumbnail.encrypted) file.thumbnailUrl = thumbnail.url;
  }
  return file;
}

/**
 * A file or a thumbnail: its plain `url`, or its encrypted `file` (with `url`, key, iv and
 * hashes: preferred when both are there), described by `info` (mimetype, size, w, h).
 */
function mediaOf(plainUrl: unknown, encryptedFile: unknown, info: Record<string, unknown> | undefined) {
  const encryption = obj(encryptedFile);
  const encryptedUrl = str(encryption?.url);
  const url = encryptedUrl ?? str(plainUrl);
  if (url === undefined) return undefined;
  const media: MatrixMedia = { url, encrypted: encryptedUrl !== undefined };
  const mimetype = str(info?.mimetype);
  if (mimetype !== undefined) media.mimetype = mimetype;
  const size = count(info?.size);
  if (size !== undefined) media.size = size;
  const width = count(info?.w);
  if (width !== undefined) media.width = width;
  const height = count(info?.h);
  if (height !== undefined) media.height = height;
  if (media.encrypted) media.encryption = encryption as JsonValue;
  return media;
}
