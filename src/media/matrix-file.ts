/**
 * The file of a Matrix media message (m.image, m.file, m.audio, m.video, m.sticker) as the
 * adapter contract speaks it (MatrixFile). Pure: no I/O.
 */
import type { MatrixFile } from "../adapter/adapter.js";
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
  const encryption = obj(content.file);
  const url = str(encryption?.url) ?? str(content.url);
  if (url === undefined) return undefined;
  const info = obj(content.info);
  const file: MatrixFile = {
    url,
    name: str(content.filename) ?? str(content.body) ?? "file",
    encrypted: encryption !== undefined && str(encryption.url) !== undefined,
  };
  const mimetype = str(info?.mimetype);
  if (mimetype !== undefined) file.mimetype = mimetype;
  const size = count(info?.size);
  if (size !== undefined) file.size = size;
  const width = count(info?.w);
  if (width !== undefined) file.width = width;
  const height = count(info?.h);
  if (height !== undefined) file.height = height;
  const durationMs = count(info?.duration);
  if (durationMs !== undefined) file.durationMs = durationMs;
  // An encrypted thumbnail (info.thumbnail_file) is left out: it would need keys of its own.
  const thumbnailUrl = str(info?.thumbnail_url);
  if (thumbnailUrl !== undefined) file.thumbnailUrl = thumbnailUrl;
  if (file.encrypted) file.encryption = encryption as JsonValue;
  return file;
}
