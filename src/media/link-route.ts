/**
 * Serves the links of ctx.mediaLink on the appservice's listener (AppserviceOptions
 * extraMiddleware): checks the signature and expiry, then streams the file from the
 * homeserver's authenticated media API with the bridge's as_token, bytes piped through, never
 * buffered. A forged or malformed link is 404, an expired one 410; a file the homeserver does
 * not have is 404, any other trouble there 502 with a plain message (never its body).
 * GET and HEAD; a Range header is passed on and a 206 passed back.
 */
import { type IncomingMessage, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Context, Middleware } from "koa";
import type { Logger } from "../common/logger.js";
import { type LinkSigner, MEDIA_LINK_PREFIX, type MediaLinkTarget } from "./link-signature.js";
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

  // node:http rather than fetch: its response is a Node stream koa pipes as it is (fetch's web
  // stream, converted back, cost a third of the throughput and more garbage per chunk).
  const download = (t: MediaLinkTarget, range: string | undefined, path: string, signal: AbortSignal) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const url = new URL(`${base}${path}/${encodeURIComponent(t.server)}/${encodeURIComponent(t.mediaId)}`);
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      const headers = { Authorization: `Bearer ${o.asToken}`, ...(range ? { Range: range } : {}) };
      send(url, { method: "GET", headers, signal }, resolve).on("error", reject).end();
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
    let res: IncomingMessage;
    try {
      res = await download(t, range, "/_matrix/client/v1/media/download", abort.signal);
      if (res.statusCode === 404 && (await errcode(res)) === "M_UNRECOGNIZED") {
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
    const status = res.statusCode ?? 0;
    if (status !== 200 && status !== 206) {
      res.destroy();
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
    // Koa pipes the stream and destroys it when the client goes away, which ends the download.
    ctx.body = res;
    ctx.type = contentType;
    if (length !== undefined && /^\d+$/.test(length)) ctx.length = Number(length);
  };
}

/** The errcode of a small JSON error answer (read at most 4 KiB, then the answer is dropped). */
async function errcode(res: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= 4096) break;
    }
  } catch {
    return undefined;
  } finally {
    res.destroy();
  }
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { errcode?: unknown };
    return typeof body.errcode === "string" ? body.errcode : undefined;
  } catch {
    return undefined;
  }
}
