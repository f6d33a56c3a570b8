/**
 * A forgiving HTML tokenizer for what Matrix clients and remote networks send: text, start
 * and end tags with their attributes (quoted or not, entities decoded), and the raw text of
 * <script>, <style> and the like. Comments, CDATA sections, doctypes and processing
 * instructions are skipped. Linear in the input's length.
 */
import { decodeEntities } from "./entities.js";

export type Token =
  | { type: "text"; text: string }
  | { type: "start"; name: string; attrs: Map<string, string>; selfClosing: boolean }
  | { type: "end"; name: string }
  /** The content of a raw-text element (script, style, textarea, ...), never parsed as HTML. */
  | { type: "raw"; name: string };

/** Elements whose content is not HTML: everything up to their end tag belongs to them. */
export const RAW_TEXT = new Set([
  "script",
  "style",
  "textarea",
  "title",
  "xmp",
  "iframe",
  "noembed",
  "noframes",
  "noscript",
  "plaintext",
]);

const TAG_NAME = /[A-Za-z][^\s/>\0]*/y;
const ATTR_NAME = /[^\s"'>/=\0][^\s"'>/=\0]*/y;
const SPACE = /[\s/]*/y;

function matchAt(re: RegExp, s: string, at: number): string | undefined {
  re.lastIndex = at;
  return re.exec(s)?.[0];
}

/** Tokens of `html`, lazily. */
export function* tokenize(html: string): Generator<Token> {
  let i = 0;
  const n = html.length;
  let textStart = 0;
  const flush = function* (end: number): Generator<Token> {
    if (end > textStart) yield { type: "text", text: decodeEntities(html.slice(textStart, end)) };
  };
  while (i < n) {
    const lt = html.indexOf("<", i);
    if (lt < 0) break;
    i = lt;
    const next = html[i + 1];
    if (next === "!" || next === "?") {
      yield* flush(i);
      // <!-- comment -->, <![CDATA[ ... ]]>, <!DOCTYPE ...>, <? ... >: all dropped.
      let end: number;
      if (html.startsWith("<!--", i)) {
        const close = html.indexOf("-->", i + 4);
        end = close < 0 ? n : close + 3;
      } else if (html.startsWith("<![CDATA[", i)) {
        const close = html.indexOf("]]>", i + 9);
        end = close < 0 ? n : close + 3;
      } else {
        const close = html.indexOf(">", i + 2);
        end = close < 0 ? n : close + 1;
      }
      i = textStart = end;
      continue;
    }
    const isEnd = next === "/";
    const name = matchAt(TAG_NAME, html, i + (isEnd ? 2 : 1));
    if (name === undefined) {
      if (isEnd && html[i + 2] === ">") {
        // "</>" is nothing.
        yield* flush(i);
        i = textStart = i + 3;
      } else i++; // a "<" that starts no tag is text
      continue;
    }
    yield* flush(i);
    let j = i + (isEnd ? 2 : 1) + name.length;
    const attrs = new Map<string, string>();
    let selfClosing = false;
    let closed = false;
    while (j < n) {
      j += matchAt(SPACE, html, j)?.length ?? 0;
      if (j >= n) break;
      if (html[j] === ">") {
        selfClosing = html[j - 1] === "/";
        j++;
        closed = true;
        break;
      }
      const attr = matchAt(ATTR_NAME, html, j) ?? html[j]!;
      j += attr.length;
      let value = "";
      const afterName = j + (matchAt(/\s*/y, html, j)?.length ?? 0);
      if (html[afterName] === "=") {
        j = afterName + 1;
        j += matchAt(/\s*/y, html, j)?.length ?? 0;
        const quote = html[j];
        if (quote === '"' || quote === "'") {
          const close = html.indexOf(quote, j + 1);
          const end = close < 0 ? n : close;
          value = html.slice(j + 1, end);
          j = end + 1;
        } else {
          value = matchAt(/[^\s>]*/y, html, j) ?? "";
          j += value.length;
        }
      }
      const key = attr.toLowerCase();
      if (!attrs.has(key)) attrs.set(key, decodeEntities(value));
    }
    if (!closed) {
      // A tag cut off by the end of the input is no tag at all (and no text either).
      textStart = n;
      break;
    }
    const lower = name.toLowerCase();
    i = textStart = j;
    if (isEnd) {
      yield { type: "end", name: lower };
      continue;
    }
    yield { type: "start", name: lower, attrs, selfClosing };
    if (RAW_TEXT.has(lower)) {
      // Everything up to the matching end tag (or the end of the input) is its raw text.
      const endRe = new RegExp(`</${lower}[\\s/>]`, "gi");
      endRe.lastIndex = j;
      const found = lower === "plaintext" ? null : endRe.exec(html);
      const stop = found ? found.index : n;
      yield { type: "raw", name: lower };
      i = textStart = stop;
    }
  }
  yield* flush(n);
}
