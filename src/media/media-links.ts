/**
 * ctx.mediaLink: turns an mxc:// URI into a signed, expiring link on the bridge's own
 * listener (see link-signature.ts for its shape and link-route.ts for what serves it).
 */
import { cleanFileName, LinkSigner, parseMxc } from "./link-signature.js";

/** What ctx.mediaLink accepts: an mxc:// URI, or a file (a MatrixFile fits) named by its url. */
export type MediaLinkSource = string | { url: string; name?: string; encrypted?: boolean };

export interface MediaLinkOptions {
  /** How long the link works, ms (default: config media.linkTtlMs). */
  ttlMs?: number;
  /** The name the file is served under (default: the file's name, else its media id). */
  fileName?: string;
}

export interface MediaLinksConfig {
  /** Config media.publicUrl: where the appservice listener is reachable. */
  publicUrl: string;
  /** Config media.linkKey. */
  linkKey: string;
  /** Config media.linkTtlMs. */
  ttlMs: number;
  /** The clock (default Date.now). */
  now?: () => number;
}

export class MediaLinks {
  readonly signer: LinkSigner;
  private readonly base: string;
  private readonly now: () => number;

  constructor(private readonly c: MediaLinksConfig) {
    this.signer = new LinkSigner(c.linkKey);
    this.base = c.publicUrl.replace(/\/+$/, "");
    this.now = c.now ?? Date.now;
    positiveTtl(c.ttlMs);
  }

  /** The link (no I/O). Throws a TypeError for a bad mxc:// URI, an encrypted file or a bad ttl. */
  link(media: MediaLinkSource, opts: MediaLinkOptions = {}): string {
    const file = typeof media === "string" ? { url: media } : media;
    if (typeof file !== "object" || file === null || typeof file.url !== "string")
      throw new TypeError(
        `ctx.mediaLink wants an mxc:// URI or a file with a url, got ${JSON.stringify(media)}`,
      );
    if ("encrypted" in file && file.encrypted === true)
      throw new TypeError(
        `ctx.mediaLink cannot serve the encrypted file ${file.url}: the link would give its ciphertext; relay it with ctx.openMedia`,
      );
    const { server, mediaId } = parseMxc(file.url);
    const ttlMs = positiveTtl(opts.ttlMs ?? this.c.ttlMs);
    const name = opts.fileName ?? ("name" in file && typeof file.name === "string" ? file.name : "");
    const fileName = cleanFileName(name, mediaId);
    const expiry = Math.ceil((this.now() + ttlMs) / 1000);
    return this.base + this.signer.path({ server, mediaId, expiry, fileName });
  }
}

function positiveTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0)
    throw new TypeError(`ttlMs must be a positive number of ms, got ${ttlMs}`);
  return ttlMs;
}

/** ctx.mediaLink of a bridge without config media.publicUrl: says which keys to set. */
export function mediaLinksOff(): never {
  throw new Error(
    "ctx.mediaLink needs config media.publicUrl (the URL the bridge's listener is reachable at) and media.linkKey",
  );
}
