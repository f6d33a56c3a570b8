/** Mention pills: links to https://matrix.to/#/@user:server, as Matrix clients write them. */
import { escapeAttribute, escapeHtml } from "./entities.js";

const PILL = /^https:\/\/matrix\.to\/#\/((?:@|%40)[^/?#\s]+)/i;

/** The user a link mentions, when it is a pill (`https://matrix.to/#/@user:server`); else undefined. */
export function pillUserId(href: string): string | undefined {
  const m = PILL.exec(href);
  if (!m) return undefined;
  try {
    const userId = decodeURIComponent(m[1]!);
    return /^@[^:\s]+:\S+$/.test(userId) ? userId : undefined;
  } catch {
    return undefined;
  }
}

/** The link for a user's pill. */
export function pillHref(userId: string): string {
  return `https://matrix.to/#/${encodeURIComponent(userId).replace(/%40/g, "@").replace(/%3A/gi, ":")}`;
}

/** An HTML pill for a user, showing `text`. */
export function pillHtml(userId: string, text: string): string {
  return `<a href="${escapeAttribute(pillHref(userId))}">${escapeHtml(text)}</a>`;
}
