/**
 * What `ctx.send` does with an attachment: checks it, reads it (and its thumbnail, if any)
 * once into the spool (capped by media.maxBytes and, when known, the homeserver's
 * m.upload.size) and describes it (mimetype, dimensions) for the outbox. Nothing is queued
 * for a file that is refused, nor for a thumbnail that is: no spool file is left behind.
 */
import { rm } from "node:fs/promises";
import type { Attachment } from "../adapter/adapter.js";
import { MediaTooLargeError } from "./errors.js";
import type { FetchLimits } from "./fetch-url.js";
import { describeSpooled, describeThumbnail, type SpooledMedia } from "./media-content.js";
import { spool } from "./spool.js";
import type { UploadLimit } from "./upload-limit.js";

export interface AttachmentsOptions extends Omit<FetchLimits, "maxBytes"> {
  dir: string;
  maxBytes: number;
  uploadLimit: Pick<UploadLimit, "get">;
}

function checkAttachment(a: Attachment): void {
  if (typeof a !== "object" || a === null)
    throw new TypeError(`attachment must be an object, got ${String(a)}`);
  if (typeof a.fileName !== "string" || a.fileName === "")
    throw new TypeError(`attachment.fileName must be a non-empty string, got ${JSON.stringify(a.fileName)}`);
  checkFields("attachment", a, ["width", "height", "durationMs"]);
  if (a.thumbnail !== undefined) {
    if (typeof a.thumbnail !== "object" || a.thumbnail === null)
      throw new TypeError(`attachment.thumbnail must be an object, got ${String(a.thumbnail)}`);
    checkFields("attachment.thumbnail", a.thumbnail, ["width", "height"]);
  }
}

function checkFields<T extends { mimetype?: string }>(
  what: string,
  a: T,
  counts: ReadonlyArray<keyof T>,
): void {
  for (const k of counts) {
    const v = a[k];
    if (v !== undefined && (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0))
      throw new TypeError(`${what}.${String(k)} must be a non-negative integer, got ${String(v)}`);
  }
  if (a.mimetype !== undefined && !/^[\w.+-]+\/[\w.+-]+$/.test(a.mimetype))
    throw new TypeError(`${what}.mimetype must look like type/subtype, got ${JSON.stringify(a.mimetype)}`);
}

export class Attachments {
  constructor(private readonly o: AttachmentsOptions) {}

  /**
   * Reads the attachment and its thumbnail into the spool; throws MediaTooLargeError over a
   * limit (either of them), a TypeError for a thumbnail that is not an image.
   */
  async prepare(a: Attachment): Promise<SpooledMedia> {
    checkAttachment(a);
    const what = a.source instanceof URL ? `${a.fileName} (${a.source.href})` : a.fileName;
    const server = await this.o.uploadLimit.get();
    const media = describeSpooled(a, await this.spool(a.source, what, server));
    if (a.thumbnail === undefined) return media;
    const t = a.thumbnail;
    const thumbWhat = `the thumbnail of ${a.fileName}${t.source instanceof URL ? ` (${t.source.href})` : ""}`;
    try {
      const file = await this.spool(t.source, thumbWhat, server);
      try {
        media.thumbnail = describeThumbnail(t, file, a.fileName);
      } catch (err) {
        await rm(file.path, { force: true });
        throw err;
      }
    } catch (err) {
      await this.discard(media);
      throw err;
    }
    return media;
  }

  /** Reads one source into the spool under the lower of the two limits. */
  private async spool(source: Attachment["source"], what: string, server: number | undefined) {
    const { uploadLimit: _, ...spoolOptions } = this.o;
    const serverLower = server !== undefined && server < this.o.maxBytes;
    try {
      return await spool(source, what, { ...spoolOptions, maxBytes: serverLower ? server : this.o.maxBytes });
    } catch (err) {
      if (err instanceof MediaTooLargeError && serverLower)
        throw new MediaTooLargeError(what, err.size, server, "homeserver (m.upload.size)");
      throw err;
    }
  }

  /** Deletes a spooled file (and its thumbnail) nobody will send (ignores one already gone). */
  async discard(m: SpooledMedia): Promise<void> {
    await rm(m.path, { force: true });
    if (m.thumbnail) await rm(m.thumbnail.path, { force: true });
  }
}
