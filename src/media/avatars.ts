/**
 * http(s) avatars (portals, room info, ghost profiles) fetched and uploaded once: the
 * mxc:// URL is kept in a store namespace by source URL, and by content hash, so the same
 * URL, or the same picture under another URL, is not uploaded again. Fetches have the
 * attachments' bounds (media.maxBytes, timeouts, at most 5 redirects, http(s) only).
 */
import { rm } from "node:fs/promises";
import type { HomeserverClient } from "../client/homeserver-client.js";
import type { Logger } from "../common/logger.js";
import type { KeyValue } from "../store/store.js";
import type { FetchLimits } from "./fetch-url.js";
import { describeSpooled } from "./media-content.js";
import { spool } from "./spool.js";

export interface AvatarsOptions extends FetchLimits {
  client: Pick<HomeserverClient, "uploadFile">;
  /** The "media-avatars" namespace: "url <source>" and "sha256 <hash>" -> mxc. */
  records: KeyValue<string>;
  dir: string;
  log: Logger;
}

export class Avatars {
  private readonly inFlight = new Map<string, Promise<string | undefined>>();

  constructor(private readonly o: AvatarsOptions) {}

  /**
   * The mxc:// URL for an avatar: an mxc:// URL or "" (no avatar) as it is; an http(s) URL
   * uploaded as `userId` unless done before. Undefined (logged) when it cannot be fetched:
   * the caller keeps the old avatar.
   */
  async mxcFor(url: string, userId: string): Promise<string | undefined> {
    if (url === "" || url.startsWith("mxc://")) return url;
    // Rooms and profiles are delivered in parallel: one fetch per URL at a time.
    let pending = this.inFlight.get(url);
    if (!pending) {
      pending = this.resolve(url, userId).finally(() => this.inFlight.delete(url));
      this.inFlight.set(url, pending);
    }
    return pending;
  }

  private async resolve(url: string, userId: string): Promise<string | undefined> {
    const byUrl = `url ${url}`;
    const known = await this.o.records.get(byUrl);
    if (known !== undefined) return known;
    let source: URL;
    try {
      source = new URL(url);
    } catch {
      this.o.log.warn({ url }, "an avatar URL is neither mxc:// nor http(s); ignored");
      return undefined;
    }
    try {
      const file = await spool(source, `avatar ${url}`, this.o);
      try {
        const byHash = `sha256 ${file.sha256}`;
        let mxc = await this.o.records.get(byHash);
        if (mxc === undefined) {
          const m = describeSpooled({ source, fileName: "avatar" }, file);
          mxc = await this.o.client.uploadFile(userId, file.path, file.size, { contentType: m.mimetype });
          await this.o.records.set(byHash, mxc);
        }
        await this.o.records.set(byUrl, mxc);
        return mxc;
      } finally {
        await rm(file.path, { force: true });
      }
    } catch (err) {
      this.o.log.warn({ url, err: String(err) }, "could not fetch or upload an avatar; keeping the old one");
      return undefined;
    }
  }
}
