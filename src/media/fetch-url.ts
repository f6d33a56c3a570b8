/**
 * Fetches an http(s) URL for the bridge (attachments, avatars): http and https only, at most
 * 5 redirects (each checked again), a timeout for the answer's headers and one for the whole
 * body, a size cap checked against Content-Length before any byte is read. Pure of any
 * Matrix token: nothing but the URL is sent.
 */
import { MediaFetchError, MediaTooLargeError } from "./errors.js";

export interface FetchLimits {
  maxBytes: number;
  /** Until the answer's headers arrived (default 30 s). */
  headersTimeoutMs?: number;
  /** For the whole transfer, body included (default 5 min). */
  totalTimeoutMs?: number;
  maxRedirects?: number;
  fetch?: typeof fetch;
}

export interface FetchedBody {
  body: ReadableStream<Uint8Array>;
  contentType: string | undefined;
  /** The signal that ends the transfer after totalTimeoutMs; the body errors with it. */
  signal: AbortSignal;
}

function checkScheme(url: URL): void {
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new MediaFetchError(`${url.protocol}// URLs cannot be fetched; only http(s)`);
}

export async function fetchUrl(start: URL, limits: FetchLimits): Promise<FetchedBody> {
  const doFetch = limits.fetch ?? fetch;
  const maxRedirects = limits.maxRedirects ?? 5;
  const signal = AbortSignal.timeout(limits.totalTimeoutMs ?? 300_000);
  let url = start;
  for (let redirects = 0; ; redirects++) {
    checkScheme(url);
    // The headers' timeout must not cut the body short: it is cleared once they arrived.
    const attempt = new AbortController();
    const headersTimer = setTimeout(
      () => attempt.abort(new Error("no answer in time")),
      limits.headersTimeoutMs ?? 30_000,
    );
    let res: Response;
    try {
      res = await doFetch(url, { redirect: "manual", signal: AbortSignal.any([signal, attempt.signal]) });
    } catch (err) {
      const why = attempt.signal.aborted ? "no answer in time" : (err as Error).message;
      throw new MediaFetchError(`could not fetch ${url.href}: ${why}`, { cause: err });
    } finally {
      clearTimeout(headersTimer);
    }
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location !== null) {
      await res.body?.cancel().catch(() => undefined);
      if (redirects >= maxRedirects)
        throw new MediaFetchError(`${start.href}: more than ${maxRedirects} redirects`);
      url = new URL(location, url);
      continue;
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      throw new MediaFetchError(`could not fetch ${url.href}: HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get("content-length") ?? NaN);
    if (Number.isFinite(declared) && declared > limits.maxBytes) {
      await res.body.cancel().catch(() => undefined);
      throw new MediaTooLargeError(start.href, declared, limits.maxBytes, "bridge (media.maxBytes)");
    }
    return { body: res.body, contentType: res.headers.get("content-type") ?? undefined, signal };
  }
}
