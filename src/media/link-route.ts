/**
 * Serves the links of ctx.mediaLink on the appservice's listener (AppserviceOptions
 * extraMiddleware): checks the signature and expiry, then streams the file from the
 * homeserver's authenticated media API with the bridge's as_token, bytes passed on as they
 * are read, never buffered, through a few reused read buffers (pooled-download.ts). A forged or malformed link is 404, an expired one 410; a file the homeserver does
 * not have is 404, any other trouble there 502 with a plain message (never its body).
 * GET and HEAD; a Range header is passed on and a 206 passed back.
 */
import type { Context, Middleware } from "koa";
import type { Logger } from "../common/logger.js";
import { type LinkSigner, MEDIA_LINK_PREFIX, type MediaLinkTarget } from "./link-signature.js";
import { pooledGet, type PooledResponse } from "./pooled-download.js";
import { contentDisposition, MEDIA_SAFETY_HEADERS, safeContentType } from "./safe-content-type.js";

export interface MediaLinkRouteOptions {
  signer: LinkSigner;
  /** The homeserver's client-server API base URL (config homeserver.url). */
  homeserverUrl: string;
  /** The registration's as_token: sent to the homeserver only, never logged. */
  asToken: string;
  log: Logger;
  /** How long the homeserver may take to start answering (default 30 000 ms). */
  timeoutMs?: number;
  now?: () => number;
}

const PREFIX_NO_SLASH = MEDIA_LINK_PREFIX.slice(0, -1);

export function createMediaLinkRoute(o: MediaLinkRouteOptions): Middleware {
  const base = o.homeserverUrl.replace(/\/+$/, "");
  const now = o.now ?? Date.now;
  const timeoutMs = o.timeoutMs ?? 30_000;

  const fail = (ctx: Context, status: number, message: string) => {
    ctx.status = status;
    ctx.set("Cache-Control", "no-store");
    ctx.type = "text/plain; charset=utf-8";
    ctx.body = `${message}\n`;
  };

  // Not node:http: its client reads every socket read into a fresh buffer, and a fast download
  // piles them up outside the heap until V8 collects (see pooled-download.ts).
  const download = (t: MediaLinkTarget, range: string | undefined, path: string, signal: AbortSignal) =>
    pooledGet(new URL(`${base}${path}/${encodeURIComponent(t.server)}/${encodeURIComponent(t.mediaId)}`), {
      headers: { Authorization: `Bearer ${o.asToken}`, ...(range ? { Range: range } : {}) },
      signal,
    });

  return async (ctx, next) => {
    if (ctx.path !== PREFIX_NO_SLASH && !ctx.path.startsWith(MEDIA_LINK_PREFIX)) {
      await next();
      return;
    }
    ctx.set(MEDIA_SAFETY_HEADERS);
    if (ctx.method !== "GET" && ctx.method !== "HEAD") {
      ctx.set("Allow", "GET, HEAD");
      fail(ctx, 405, "Method not allowed");
      return;
    }
    // The raw path: a percent-encoded "/" in the file name must stay inside its segment.
    const rawPath = ctx.originalUrl.split("?")[0]!;
    const check = o.signer.check(rawPath, now());
    if (!check.ok) {
      if (check.reason === "expired") fail(ctx, 410, "This link has expired");
      else fail(ctx, 404, "Not found");
      return;
    }
    const t = check.target;
    const range = ctx.get("Range") || undefined;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    let res: PooledResponse;
    try {
      res = await download(t, range, "/_matrix/client/v1/media/download", abort.signal);
      if (res.status === 404 && (await errcode(res)) === "M_UNRECOGNIZED") {
        // A homeserver without authenticated media (before Matrix 1.11).
        res = await download(t, range, "/_matrix/media/v3/download", abort.signal);
      }
    } catch (err) {
      o.log.warn({ err, server: t.server, mediaId: t.mediaId }, "media link: the homeserver did not answer");
      fail(ctx, 502, "The file could not be fetched");
      return;
    } finally {
      clearTimeout(timer);
    }
    const status = res.status;
    if (status !== 200 && status !== 206) {
      res.close();
      if (status === 404) return fail(ctx, 404, "Not found");
      if (status === 416) return fail(ctx, 416, "Range not satisfiable");
      o.log.warn(
        { status, server: t.server, mediaId: t.mediaId },
        "media link: the homeserver refused the download",
      );
      return fail(ctx, 502, "The file could not be fetched");
    }
    const { contentType, inline } = safeContentType(res.headers["content-type"]);
    ctx.status = status;
    ctx.set("Content-Disposition", contentDisposition(t.fileName, inline));
    ctx.set("Cache-Control", "private, max-age=300");
    ctx.set("Accept-Ranges", res.headers["accept-ranges"] === "bytes" ? "bytes" : "none");
    const contentRange = res.headers["content-range"];
    if (status === 206 && contentRange) ctx.set("Content-Range", contentRange);
    const length = res.headers["content-length"];
    ctx.type = contentType;
    if (length !== undefined && /^\d+$/.test(length)) ctx.length = Number(length);
    // The body goes to the client socket as it is read, not through koa's stream piping: each
    // slice is a view into one of the download's few reused read buffers.
    ctx.respond = false;
    const client = ctx.res;
    if (ctx.method === "HEAD") {
      res.close();
      client.end();
      return;
    }
    client.once("close", () => res.close()); // the client went away: so does the download
    try {
      await res.pipeTo(client);
      client.end();
    } catch (err) {
      if (!client.destroyed)
        o.log.warn({ err, server: t.server, mediaId: t.mediaId }, "media link: the download broke off");
      client.destroy();
    }
  };
}

/** The errcode of a small JSON error answer (read at most 4 KiB, then the answer is dropped). */
async function errcode(res: PooledResponse): Promise<string | undefined> {
  try {
    const body = JSON.parse(await res.text(4096)) as { errcode?: unknown };
    return typeof body.errcode === "string" ? body.errcode : undefined;
  } catch {
    return undefined;
  }
}
