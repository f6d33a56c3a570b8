/* eslint-disable no-control-regex -- control characters mark block boundaries on purpose */
import { pillUserId } from "./pills.js";
import { parseHtml, textContent, type Element, type Node, type ParseOptions } from "./tree.js";

export interface HtmlToTextOptions extends ParseOptions {
  /**
   * The text for a mention pill of `userId` shown as `text`; default: `text`. Return `text`
   * to keep it.
   */
  mention?(userId: string, text: string): string;
}

const BLOCK = new Set([
  "p",
  "div",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
  "blockquote",
  "ul",
  "ol",
  "li",
  "pre",
  "table",
  "thead",
  "tbody",
  "tr",
  "caption",
  "hr",
  "details",
  "summary",
]);

/** Mark block and paragraph boundaries in the text being built; runs of them become line breaks. */
const BREAK = "\u0000";
const PARA = "\u0001";
/** A space inside <pre>, kept where block boundaries trim blanks. */
const PRE_SPACE = "\u0002";

function prefixLines(text: string, first: string, rest: string): string {
  return text
    .split("\n")
    .map((line, i) => (i === 0 ? first : rest) + line)
    .join("\n");
}

/** Block content: boundaries become single line breaks, blank-line ends trimmed. */
function finish(text: string): string {
  return text
    .replace(/[ \t]*[\u0000\u0001][\u0000\u0001 \t]*/g, (run) => (run.includes(PARA) ? "\n\n" : "\n"))
    .replace(/\n{3,}/g, "\n\n")
    .replace(/^\n+|\n+$/g, "")
    .replace(/\u0002/g, " ");
}

function render(nodes: readonly Node[], opts: HtmlToTextOptions, pre: boolean): string {
  let out = "";
  for (const node of nodes) {
    if (typeof node === "string") {
      const text = node.replace(/[\u0000-\u0002]/g, "");
      out += pre ? text : text.replace(/[ \t\r\n]+/g, " ");
      continue;
    }
    out += element(node, opts, pre);
  }
  return out;
}

function element(el: Element, opts: HtmlToTextOptions, pre: boolean): string {
  const inner = () => render(el.children, opts, pre || el.tag === "pre");
  switch (el.tag) {
    case "br":
      return "\n";
    case "hr":
      return `${BREAK}---${BREAK}`;
    case "img":
      return el.attrs.alt ?? el.attrs.title ?? "";
    case "a": {
      const text = inner();
      const href = el.attrs.href;
      if (href === undefined) return text;
      const userId = pillUserId(href);
      if (userId !== undefined) return opts.mention ? opts.mention(userId, text) : text;
      if (`mailto:${text}` === href) return text;
      if (text.trim() === "" || text === href) return href;
      return `${text} (${href})`;
    }
    case "p":
      return `${PARA}${inner()}${PARA}`;
    case "blockquote":
      return `${BREAK}${prefixLines(finish(inner()), "> ", "> ")}${BREAK}`;
    case "ul":
    case "ol": {
      const start = el.tag === "ol" ? Number(el.attrs.start ?? 1) : 0;
      let n = 0;
      const items = el.children.map((child) => {
        if (typeof child === "string") return child.trim();
        const text = finish(element(child, opts, pre));
        if (child.tag !== "li") return text;
        const marker = el.tag === "ol" ? `${start + n++}. ` : "- ";
        return prefixLines(text, marker, " ".repeat(marker.length));
      });
      return `${BREAK}${items.filter((t) => t !== "").join("\n")}${BREAK}`;
    }
    case "tr":
      return `${BREAK}${el.children
        .map((c) => (typeof c === "string" ? c.trim() : finish(element(c, opts, pre))))
        .filter((t) => t !== "")
        .join(" | ")}${BREAK}`;
    case "td":
    case "th":
      return inner();
    case "pre":
      return `${BREAK}${textContent(el.children).replace(/\n$/, "").replace(/ /g, PRE_SPACE)}${BREAK}`;
    default:
      return BLOCK.has(el.tag) ? `${BREAK}${inner()}${BREAK}` : inner();
  }
}

/**
 * Plain text for Matrix HTML (sanitised first): line breaks for `<br>` and blocks, "> " before
 * quoted lines, "- " and "1. " before list items, links as "text (url)" unless the text is
 * the URL, images as their alt text, mention pills as `opts.mention`'s text.
 */
export function htmlToText(html: string, opts: HtmlToTextOptions = {}): string {
  return finish(render(parseHtml(html, opts), opts, false));
}

/** HTML for plain text: escaped, line breaks as `<br>`. */
export function textToHtml(text: string): string {
  return text
    .replace(/[&<>"]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&quot;"))
    .replace(/\r?\n/g, "<br>");
}
