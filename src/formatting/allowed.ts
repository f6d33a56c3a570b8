/* eslint-disable no-control-regex -- control characters in a URL are refused on purpose */
/**
 * Matrix's allowed HTML for m.room.message `formatted_body` (client-server spec, "HTML
 * messages"): the tags, the attributes each may carry, and what their values may be.
 */

const COLOUR = /^#[0-9a-fA-F]{6}$/;
const INTEGER = /^\d{1,9}$/;
/** Link schemes the spec allows in `href`. */
export const LINK_SCHEMES = new Set(["http", "https", "ftp", "mailto", "magnet"]);

type Check = (value: string) => string | undefined;

/** A URL for `href`: one of the allowed schemes, no control characters or whitespace inside. */
export function safeHref(value: string): string | undefined {
  const url = value.trim();
  // Control characters and blanks are how "java\tscript:" and friends hide a scheme.
  if (url === "" || /[\u0000-\u0020\u007f-\u009f\s]/.test(url)) return undefined;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  return scheme !== undefined && LINK_SCHEMES.has(scheme) ? url : undefined;
}

/** An `img` source: mxc:// only (clients must not load anything else). */
function mxc(value: string): string | undefined {
  const url = value.trim();
  return /^mxc:\/\/[A-Za-z0-9.:[\]-]+\/[A-Za-z0-9_-]+$/.test(url) ? url : undefined;
}

const colour: Check = (v) => (COLOUR.test(v.trim()) ? v.trim() : undefined);
const integer: Check = (v) => (INTEGER.test(v.trim()) ? v.trim() : undefined);
const anyText: Check = (v) => v;

const COLOURS = { "data-mx-bg-color": colour, "data-mx-color": colour };

/** Allowed tags, each with its allowed attributes and their checks. */
export const ALLOWED: ReadonlyMap<string, Readonly<Record<string, Check>>> = new Map<
  string,
  Record<string, Check>
>([
  ["font", { ...COLOURS, color: colour }],
  ["del", {}],
  ["h1", {}],
  ["h2", {}],
  ["h3", {}],
  ["h4", {}],
  ["h5", {}],
  ["h6", {}],
  ["blockquote", {}],
  ["p", {}],
  ["a", { href: safeHref, target: (v) => (v === "_blank" ? v : undefined) }],
  ["ul", {}],
  ["ol", { start: integer }],
  ["sup", {}],
  ["sub", {}],
  ["li", {}],
  ["b", {}],
  ["i", {}],
  ["u", {}],
  ["strong", {}],
  ["em", {}],
  ["strike", {}],
  ["s", {}],
  ["code", { class: (v) => (/^language-[A-Za-z0-9_+#.-]{1,40}$/.test(v.trim()) ? v.trim() : undefined) }],
  ["hr", {}],
  ["br", {}],
  ["div", { "data-mx-maths": anyText }],
  ["table", {}],
  ["thead", {}],
  ["tbody", {}],
  ["tr", {}],
  ["th", {}],
  ["td", {}],
  ["caption", {}],
  ["pre", {}],
  ["span", { ...COLOURS, "data-mx-spoiler": anyText, "data-mx-maths": anyText }],
  ["img", { width: integer, height: integer, alt: anyText, title: anyText, src: mxc }],
  ["details", {}],
  ["summary", {}],
]);

/** Elements without content. */
export const VOID = new Set(["br", "hr", "img"]);

/**
 * Elements dropped together with everything inside them: active content, foreign markup, and
 * the reply fallback (`mx-reply`), which repeats another message.
 */
export const DROP_WITH_CONTENT = new Set([
  "script",
  "style",
  "iframe",
  "frame",
  "frameset",
  "object",
  "embed",
  "applet",
  "svg",
  "math",
  "template",
  "textarea",
  "select",
  "option",
  "title",
  "head",
  "noscript",
  "noembed",
  "noframes",
  "xmp",
  "plaintext",
  "mx-reply",
  "button",
  "form",
  "audio",
  "video",
  "canvas",
  "link",
  "meta",
  "base",
]);
