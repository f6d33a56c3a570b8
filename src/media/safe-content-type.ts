/**
 * The headers a served Matrix file goes out with. The file comes from anyone on Matrix, so a
 * browser must never run it: only types known to be inert are served as themselves and
 * inline (the list Synapse serves inline, less css and json); every other type, text/html,
 * SVG and scripts included, goes out as application/octet-stream, as an attachment.
 */

const INLINE_TYPES = new Set([
  "text/plain",
  "text/csv",
  "image/jpeg",
  "image/gif",
  "image/png",
  "image/apng",
  "image/webp",
  "image/avif",
  "video/mp4",
  "video/webm",
  "video/ogg",
  "video/quicktime",
  "audio/mp4",
  "audio/webm",
  "audio/aac",
  "audio/mpeg",
  "audio/ogg",
  "audio/wave",
  "audio/wav",
  "audio/x-wav",
  "audio/x-pn-wav",
  "audio/flac",
  "audio/x-flac",
]);

/** The Content-Type to serve for what the homeserver said, and whether it may show inline. */
export function safeContentType(given: string | null | undefined): { contentType: string; inline: boolean } {
  const essence = (given ?? "").split(";")[0]!.trim().toLowerCase();
  if (!INLINE_TYPES.has(essence)) return { contentType: "application/octet-stream", inline: false };
  // Text keeps only a charset parameter, and only a plain one.
  const charset = /;\s*charset="?([A-Za-z0-9._-]{1,40})"?\s*(?:;|$)/i.exec(given ?? "")?.[1];
  return {
    contentType: essence.startsWith("text/") && charset ? `${essence}; charset=${charset}` : essence,
    inline: true,
  };
}

/** A Content-Disposition naming the file (RFC 6266: an ASCII fallback and filename*). */
export function contentDisposition(fileName: string, inline: boolean): string {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  const encoded = encodeURIComponent(fileName).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${inline ? "inline" : "attachment"}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** Headers on every answer of the media route: nothing in it is to be sniffed, framed or run. */
export const MEDIA_SAFETY_HEADERS: Readonly<Record<string, string>> = {
  "X-Content-Type-Options": "nosniff",
  "Content-Security-Policy": "sandbox; default-src 'none'",
  "Cross-Origin-Resource-Policy": "cross-origin",
  "Referrer-Policy": "no-referrer",
};
