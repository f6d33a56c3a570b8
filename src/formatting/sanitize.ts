import { parseHtml, serializeHtml, type ParseOptions } from "./tree.js";

/**
 * Reduces HTML to what Matrix allows in `formatted_body`: allowed tags with allowed
 * attributes only (links http/https/ftp/mailto/magnet, images mxc:// only, colours
 * `#rrggbb`, code classes `language-*`), balanced, re-escaped. Script, style, iframe and
 * similar elements go with their content; unknown tags go, their text stays. Bounded:
 * `maxLength` characters of input (default 100 000), `maxDepth` nesting (default 100).
 */
export function sanitizeHtml(html: string, opts: ParseOptions = {}): string {
  return serializeHtml(parseHtml(html, opts));
}
