import { escapeHtml } from "../formatting/entities.js";

/**
 * An m.notice from the bot: `text` as the body and, unless `html` is given, an HTML version
 * where `backticks` become code and lines become lines. Pure.
 */
export function noticeContent(text: string, html?: string): Record<string, unknown> {
  const formatted =
    html ??
    escapeHtml(text)
      .replace(/`([^`\n]+)`/g, "<code>$1</code>")
      .replace(/\n/g, "<br>");
  return { msgtype: "m.notice", body: text, format: "org.matrix.custom.html", formatted_body: formatted };
}

/** A sentence's first letter upper-cased ("login failed: ..." -> "Login failed: ..."). Pure. */
export function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
