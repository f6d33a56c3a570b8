/**
 * What the outbox keeps for an attachment (a reference to its spooled file and its info),
 * and the Matrix message fields built from it. Pure: no I/O.
 */
import type { Attachment, AttachmentThumbnail, MessageContent } from "../adapter/adapter.js";
import { imageDimensions } from "./dimensions.js";
import { OCTET_STREAM, sniffMimetype } from "./sniff.js";
import type { SpooledFile } from "./spool.js";

/** A spooled attachment as stored in an outbox action (JSON). */
export interface SpooledMedia {
  path: string;
  sha256: string;
  size: number;
  fileName: string;
  mimetype: string;
  width?: number;
  height?: number;
  durationMs?: number;
  /** The adapter's thumbnail of it (Attachment.thumbnail), spooled beside it. */
  thumbnail?: SpooledThumbnail;
}

/** A spooled thumbnail: always an image. */
export interface SpooledThumbnail {
  path: string;
  sha256: string;
  size: number;
  mimetype: string;
  width?: number;
  height?: number;
}

/** The mimetype: the adapter's, else sniffed, else what the URL was served with, else octet-stream. */
function mimetypeOf(a: Pick<Attachment, "mimetype">, file: SpooledFile): string {
  if (a.mimetype !== undefined && a.mimetype !== "") return a.mimetype;
  const sniffed = sniffMimetype(file.head);
  if (sniffed !== OCTET_STREAM) return sniffed;
  const served = file.servedType?.split(";")[0]?.trim();
  return served !== undefined && /^[\w.+-]+\/[\w.+-]+$/.test(served) ? served : OCTET_STREAM;
}

export function describeSpooled(a: Attachment, file: SpooledFile): SpooledMedia {
  const mimetype = mimetypeOf(a, file);
  const out: SpooledMedia = {
    path: file.path,
    sha256: file.sha256,
    size: file.size,
    fileName: a.fileName,
    mimetype,
  };
  addDimensions(out, a, file);
  if (a.durationMs !== undefined) out.durationMs = a.durationMs;
  return out;
}

/**
 * The spooled thumbnail's description; a TypeError (naming `what`) when it is not an image,
 * by the adapter's word or by its bytes.
 */
export function describeThumbnail(t: AttachmentThumbnail, file: SpooledFile, what: string): SpooledThumbnail {
  const mimetype = mimetypeOf(t, file);
  if (!mimetype.startsWith("image/"))
    throw new TypeError(`the thumbnail of ${what} must be an image (image/*), got ${mimetype}`);
  const out: SpooledThumbnail = { path: file.path, sha256: file.sha256, size: file.size, mimetype };
  addDimensions(out, t, file);
  return out;
}

/** Width and height: the adapter's, else read from the image's header. */
function addDimensions(
  out: { mimetype: string; width?: number; height?: number },
  given: { width?: number; height?: number },
  file: SpooledFile,
): void {
  const dims =
    given.width !== undefined && given.height !== undefined
      ? { width: given.width, height: given.height }
      : imageDimensions(file.head, out.mimetype);
  if (dims) {
    out.width = dims.width;
    out.height = dims.height;
  }
}

/** m.image, m.video, m.audio or m.file, from the mimetype. */
export function msgtypeFor(mimetype: string): "m.image" | "m.video" | "m.audio" | "m.file" {
  if (mimetype.startsWith("image/")) return "m.image";
  if (mimetype.startsWith("video/")) return "m.video";
  if (mimetype.startsWith("audio/")) return "m.audio";
  return "m.file";
}

/**
 * The event's `info`: mimetype, size, w/h, duration (ms); with the thumbnail's mxc:// URL,
 * `thumbnail_url` and `thumbnail_info` (mimetype, size, w/h).
 */
export function mediaInfo(m: SpooledMedia, thumbnailMxc?: string): Record<string, unknown> {
  const info = imageInfo(m);
  if (m.durationMs !== undefined) info.duration = m.durationMs;
  if (m.thumbnail !== undefined && thumbnailMxc !== undefined) {
    info.thumbnail_url = thumbnailMxc;
    info.thumbnail_info = imageInfo(m.thumbnail);
  }
  return info;
}

function imageInfo(m: { mimetype: string; size: number; width?: number; height?: number }) {
  const info: Record<string, unknown> = { mimetype: m.mimetype, size: m.size };
  if (m.width !== undefined) info.w = m.width;
  if (m.height !== undefined) info.h = m.height;
  return info;
}

/**
 * The adapter's content turned into a media message of `mxc` (Matrix 1.10 captions):
 * `filename` is the file name; `body` is the caption, or the file name when there is none
 * (an empty body, or one equal to the file name). A caption's `html` stays its formatted_body.
 * `thumbnailMxc` is the uploaded thumbnail's, when the file has one.
 */
export function withMedia(
  content: MessageContent,
  m: SpooledMedia,
  mxc: string,
  thumbnailMxc?: string,
): MessageContent {
  const c = typeof content === "string" ? { body: content } : content;
  const caption = c.body !== "" && c.body !== m.fileName;
  const out: Exclude<MessageContent, string> = {
    msgtype: msgtypeFor(m.mimetype),
    body: caption ? c.body : m.fileName,
    extra: { ...(c.extra ?? {}), url: mxc, info: mediaInfo(m, thumbnailMxc), filename: m.fileName },
  };
  if (caption && c.html !== undefined) out.html = c.html;
  return out;
}
