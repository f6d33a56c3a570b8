/**
 * What `ctx.send` does with an attachment: checks it, reads it once into the spool (capped
 * by media.maxBytes and, when known, the homeserver's m.upload.size) and describes it
 * (mimetype, dimensions) for the outbox. Nothing is queued for a file that is refused.
 */
import { rm } from "node:fs/promises";
import type { Attachment } from "../adapter/adapter.js";
import { MediaTooLargeError } from "./errors.js";
import type { FetchLimits } from "./fetch-url.js";
import { describeSpooled, type SpooledMedia } from "./media-content.js";
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
  for (const k of ["width", "height", "durationMs"] as const) {
    const v = a[k];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0))
      throw new TypeError(`attachment.${k} must be a non-negative integer, got ${String(v)}`);
  }
  if (a.mimetype !== undefined && !/^[\w.+-]+\/[\w.+-]+$/.test(a.mimetype))
    throw new TypeError(`attachment.mimetype must look like type/subtype, got ${JSON.stringify(a.mimetype)}`);
}

export class Attachments {
  constructor(private readonly o: AttachmentsOptions) {}

  /** Reads the attachment into the spool; throws MediaTooLargeError over a limit. */
  async prepare(a: Attachment): Promise<SpooledMedia> {
    checkAttachment(a);
    const what = a.source instanceof URL ? `${a.fileName} (${a.source.href})` : a.fileName;
    const server = await this.o.uploadLimit.get();
    const { uploadLimit: _, ...spoolOptions } = this.o;
    const serverLower = server !== undefined && server < this.o.maxBytes;
    try {
      const file = await spool(a.source, what, {
        ...spoolOptions,
        maxBytes: serverLower ? server : this.o.maxBytes,
      });
      return describeSpooled(a, file);
    } catch (err) {
      if (err instanceof MediaTooLargeError && serverLower)
        throw new MediaTooLargeError(what, err.size, server, "homeserver (m.upload.size)");
      throw err;
    }
  }

  /** Deletes a spooled file nobody will send (ignores one already gone). */
  async discard(m: SpooledMedia): Promise<void> {
    await rm(m.path, { force: true });
  }
}
