/** HTML character references: decoding what a sender wrote, escaping what the bridge writes. */

/** The named references senders use in practice, and those used to hide a URL scheme. */
const NAMED: Readonly<Record<string, string>> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: "\u00a0",
  colon: ":",
  tab: "\t",
  newline: "\n",
  lpar: "(",
  rpar: ")",
  sol: "/",
  comma: ",",
  period: ".",
  excl: "!",
  num: "#",
  copy: "©",
  reg: "®",
  trade: "™",
  hellip: "…",
  mdash: "—",
  ndash: "–",
  laquo: "«",
  raquo: "»",
  lsquo: "‘",
  rsquo: "’",
  ldquo: "“",
  rdquo: "”",
  bull: "•",
  middot: "·",
  deg: "°",
  times: "×",
  divide: "÷",
  euro: "€",
  pound: "£",
  shy: "\u00ad",
};

function fromCodePoint(n: number): string {
  if (!Number.isFinite(n) || n <= 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return "\ufffd";
  return String.fromCodePoint(n);
}

/**
 * Decodes character references: numeric ones (with or without the closing `;`, as browsers
 * read them) and the named ones above; an unknown name stays as written.
 */
export function decodeEntities(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(
    /&(?:#[xX]([0-9a-fA-F]{1,8});?|#([0-9]{1,10});?|([A-Za-z][A-Za-z0-9]{1,31});)/g,
    (m, hex, dec, name) => {
      if (hex !== undefined) return fromCodePoint(parseInt(hex as string, 16));
      if (dec !== undefined) return fromCodePoint(parseInt(dec as string, 10));
      return NAMED[(name as string).toLowerCase()] ?? m;
    },
  );
}

/** Escapes text for an HTML text node. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"));
}

/** Escapes text for a double-quoted HTML attribute value. */
export function escapeAttribute(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
