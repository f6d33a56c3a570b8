/**
 * Signed links to Matrix files (ctx.mediaLink): what a link says and how it is checked.
 * A link is `<publicUrl>/_bridgekit/media/v1/<server>/<mediaId>/<expiry>/<signature>/<fileName>`,
 * `expiry` in unix seconds, `signature` the first 128 bits of HMAC-SHA256 (key: config
 * media.linkKey) over the server, media id, expiry and file name, base64url. Pure: no I/O.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const MEDIA_LINK_PREFIX = "/_bridgekit/media/v1/";

/** What a link names. */
export interface MediaLinkTarget {
  server: string;
  mediaId: string;
  /** Unix seconds after which the link answers 410. */
  expiry: number;
  fileName: string;
}

/** A path's check: the target, or why it is refused (`not-found` for anything forged or malformed). */
export type LinkCheck =
  { ok: true; target: MediaLinkTarget } | { ok: false; reason: "not-found" | "expired" };

const SIGNATURE_BYTES = 16;
const SERVER = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/;
const MEDIA_ID = /^[A-Za-z0-9_-]+$/;
const MAX_FILE_NAME = 200;

/** Splits an mxc:// URI into server and media id; throws a TypeError naming the value otherwise. */
export function parseMxc(mxc: string): { server: string; mediaId: string } {
  const m = /^mxc:\/\/([^/]+)\/([^/]+)$/.exec(mxc);
  if (!m || !SERVER.test(m[1]!) || !MEDIA_ID.test(m[2]!))
    throw new TypeError(`${JSON.stringify(mxc)} is not an mxc:// URI (mxc://server/mediaId)`);
  return { server: m[1]!, mediaId: m[2]! };
}

/**
 * A file name fit for a link and a Content-Disposition: no path separators or control
 * characters, at most 200 characters; an empty result becomes `fallback`.
 */
export function cleanFileName(name: string, fallback: string): string {
  // eslint-disable-next-line no-control-regex
  const cleaned = [...name.replace(/[\u0000-\u001f\u007f/\\]/g, "_").trim()].slice(0, MAX_FILE_NAME).join("");
  return cleaned === "" || cleaned === "." || cleaned === ".." ? fallback : cleaned;
}

export class LinkSigner {
  private readonly key: Buffer;

  /** `key`: config media.linkKey (16+ characters). */
  constructor(key: string) {
    if (typeof key !== "string" || key.trim().length < 16)
      throw new RangeError("media.linkKey must be at least 16 characters");
    this.key = Buffer.from(key, "utf8");
  }

  private mac(t: MediaLinkTarget): Buffer {
    // Length-prefixed fields: no two targets sign the same bytes.
    const fields = ["bridgekit-media-link-v1", t.server, t.mediaId, String(t.expiry), t.fileName];
    const h = createHmac("sha256", this.key);
    for (const f of fields) h.update(`${Buffer.byteLength(f)}:${f}\n`);
    return h.digest().subarray(0, SIGNATURE_BYTES);
  }

  /** The link's path (from MEDIA_LINK_PREFIX on), each segment percent-encoded. */
  path(t: MediaLinkTarget): string {
    const sig = this.mac(t).toString("base64url");
    return `${MEDIA_LINK_PREFIX}${[t.server, t.mediaId, String(t.expiry), sig, t.fileName].map(encodeURIComponent).join("/")}`;
  }

  /**
   * Checks a request path (raw, still percent-encoded). The signature is compared in
   * constant time and before the expiry, so a forged expiry is `not-found`, not `expired`.
   */
  check(rawPath: string, nowMs: number): LinkCheck {
    const notFound: LinkCheck = { ok: false, reason: "not-found" };
    if (!rawPath.startsWith(MEDIA_LINK_PREFIX)) return notFound;
    const parts = rawPath.slice(MEDIA_LINK_PREFIX.length).split("/");
    if (parts.length !== 5) return notFound;
    let decoded: string[];
    try {
      decoded = parts.map((p) => decodeURIComponent(p));
    } catch {
      return notFound;
    }
    const [server, mediaId, expiryText, sig, fileName] = decoded as [string, string, string, string, string];
    if (!SERVER.test(server) || !MEDIA_ID.test(mediaId) || !/^\d{1,12}$/.test(expiryText)) return notFound;
    if (fileName !== cleanFileName(fileName, "")) return notFound;
    const given = Buffer.from(sig, "base64url");
    if (given.length !== SIGNATURE_BYTES || given.toString("base64url") !== sig) return notFound;
    const target: MediaLinkTarget = { server, mediaId, expiry: Number(expiryText), fileName };
    if (!timingSafeEqual(given, this.mac(target))) return notFound;
    if (target.expiry * 1000 <= nowMs) return { ok: false, reason: "expired" };
    return { ok: true, target };
  }
}
