/**
 * Uploads a spooled attachment (and its thumbnail) once per outbox item: each mxc:// URL is
 * recorded in the store (keyed by the item's txnId, the thumbnail's by txnId + "/thumbnail")
 * before the event is sent, so a delivery repeated after a crash or an outage reuses it; the
 * spool files and the records go once the event was sent.
 */
import { rm } from "node:fs/promises";
import type { HomeserverClient } from "../client/homeserver-client.js";
import { MatrixError } from "../client/matrix-error.js";
import type { Logger } from "../common/logger.js";
import type { KeyValue } from "../store/store.js";
import type { SpooledMedia } from "./media-content.js";

/** The record key of an item's thumbnail upload. */
const thumbnailKey = (txnId: string) => `${txnId}/thumbnail`;

/** What one upload needs of a spooled file. */
interface Upload {
  path: string;
  size: number;
  fileName: string;
  mimetype: string;
}

/** The spooled file is gone and no upload was recorded: the item cannot be delivered. */
export class SpoolFileMissingError extends TypeError {
  override readonly name = "SpoolFileMissingError";
}

export class MediaUploads {
  constructor(
    private readonly client: Pick<HomeserverClient, "uploadFile">,
    private readonly records: KeyValue<string>,
    private readonly log: Logger,
  ) {}

  /** The file's mxc:// URL, uploading it as `userId` unless this item already did. */
  mxcFor(txnId: string, m: SpooledMedia, userId: string): Promise<string> {
    return this.once(txnId, m, userId);
  }

  /** The thumbnail's mxc:// URL (undefined without one), uploaded once like the file. */
  async thumbnailMxcFor(txnId: string, m: SpooledMedia, userId: string): Promise<string | undefined> {
    if (!m.thumbnail) return undefined;
    return this.once(thumbnailKey(txnId), { ...m.thumbnail, fileName: `thumbnail-${m.fileName}` }, userId);
  }

  private async once(key: string, m: Upload, userId: string): Promise<string> {
    const known = await this.records.get(key);
    if (known !== undefined) return known;
    let mxc: string;
    try {
      mxc = await this.client.uploadFile(userId, m.path, m.size, {
        filename: m.fileName,
        contentType: m.mimetype,
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        throw new SpoolFileMissingError(`the spooled file of ${m.fileName} (${m.path}) is gone`);
      if (err instanceof MatrixError && (err.status === 413 || err.errcode === "M_TOO_LARGE"))
        this.log.error(
          { fileName: m.fileName, size: m.size, errcode: err.errcode },
          "the homeserver refused a file as too large; it will not be sent",
        );
      throw err;
    }
    await this.records.set(key, mxc);
    return mxc;
  }

  /** After the event was sent, or when it never will be: the files and the records go. */
  async forget(txnId: string, m: SpooledMedia): Promise<void> {
    await rm(m.path, { force: true });
    await this.records.delete(txnId);
    if (m.thumbnail) {
      await rm(m.thumbnail.path, { force: true });
      await this.records.delete(thumbnailKey(txnId));
    }
  }
}
