/* eslint-disable no-control-regex -- control characters mark block boundaries on purpose */
/**
 * A Markdown-like markup, both ways, for networks that carry it (Slack-, Discord- or
 * Telegram-style text): **bold**, *italic* or _italic_, ~~strike~~, `code`, ``` blocks,
 * "> " quotes, [links](https://...), "- " and "1. " lists, "# " headings, "---" rules.
 * Not CommonMark: a small, predictable subset; everything else is text.
 */
import { safeHref } from "./allowed.js";
import { escapeAttribute } from "./entities.js";
import { sanitizeHtml } from "./sanitize.js";
import { parseHtml, textContent, type Element, type Node } from "./tree.js";

const escapeText = (s: string) =>
  s.replace(/[&<>"]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&quot;"));

/** Inline markup of one line (or one paragraph's lines joined by "\n"). */
function inline(text: string): string {
  const held: string[] = [];
  const hold = (html: string) => `\uE000${held.push(html) - 1}\uE001`;
  let s = text.replace(/[\uE000\uE001]/g, "");
  s = s.replace(/\\([\\`*_~[\]()#>+\-.!|{}])/g, (_, c: string) => hold(escapeText(c)));
  s = s.replace(/`([^`\n]+)`/g, (_, code: string) => hold(`<code>${escapeText(code)}</code>`));
  s = s.replace(/\[([^\]\n]+)\]\(([^)\s]+)\)/g, (m, label: string, url: string) => {
    const href = safeHref(url);
    return href === undefined
      ? m
      : hold(`<a href="${escapeAttribute(href)}">${emphasis(escapeText(label))}</a>`);
  });
  s = s.replace(/\b(?:https?|ftp):\/\/[^\s<>"]*[^\s<>".,;:!?)\]]/g, (url) =>
    hold(`<a href="${escapeAttribute(url)}">${escapeText(url)}</a>`),
  );
  s = emphasis(escapeText(s));
  return s.replace(/\uE000(\d+)\uE001/g, (_, i: string) => held[Number(i)]!).replace(/\n/g, "<br>");
}

function emphasis(s: string): string {
  return s
    .replace(/\*\*(?=\S)([^*]*?\S)\*\*/g, "<strong>$1</strong>")
    .replace(/~~(?=\S)([^~]*?\S)~~/g, "<del>$1</del>")
    .replace(/\*(?=[^\s*])([^*]*?[^\s*])\*/g, "<em>$1</em>")
    .replace(/(^|[^\p{L}\p{N}_])_(?=[^\s_])([^_]*?[^\s_])_(?![\p{L}\p{N}_])/gu, "$1<em>$2</em>");
}

const FENCE = /^```([A-Za-z0-9_+#.-]*)\s*$/;
const QUOTE = /^> ?/;
const BULLET = /^[-*+] +/;
const NUMBER = /^(\d{1,9})\. +/;
const HEADING = /^(#{1,6}) +(.*)$/;
const RULE = /^(?:---+|\*\*\*+|___+)\s*$/;

/** The blocks of some lines, as HTML; a single paragraph comes without `<p>`. */
function blocks(lines: string[]): string[] {
  const out: Array<{ html: string; paragraph: boolean }> = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === "") {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const body: string[] = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
      i++;
      const cls = fence[1] ? ` class="language-${fence[1]}"` : "";
      out.push({ html: `<pre><code${cls}>${escapeText(body.join("\n"))}</code></pre>`, paragraph: false });
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const n = heading[1]!.length;
      out.push({ html: `<h${n}>${inline(heading[2]!)}</h${n}>`, paragraph: false });
      i++;
      continue;
    }
    if (RULE.test(line)) {
      out.push({ html: "<hr>", paragraph: false });
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const body: string[] = [];
      for (; i < lines.length && QUOTE.test(lines[i]!); i++) body.push(lines[i]!.replace(QUOTE, ""));
      out.push({ html: `<blockquote>${wrap(blocks(body))}</blockquote>`, paragraph: false });
      continue;
    }
    const ordered = NUMBER.exec(line);
    if (ordered || BULLET.test(line)) {
      const marker = ordered ? NUMBER : BULLET;
      const items: string[][] = [];
      while (i < lines.length) {
        const l = lines[i]!;
        if (marker.test(l)) items.push([l.replace(marker, "")]);
        else if (/^\s{2,}\S/.test(l) && items.length > 0)
          items[items.length - 1]!.push(l.replace(/^\s{2,4}/, ""));
        else break;
        i++;
      }
      const lis = items.map((item) => `<li>${wrap(blocks(item))}</li>`).join("");
      const start = ordered && ordered[1] !== "1" ? ` start="${Number(ordered[1])}"` : "";
      out.push({ html: ordered ? `<ol${start}>${lis}</ol>` : `<ul>${lis}</ul>`, paragraph: false });
      continue;
    }
    const para: string[] = [];
    for (; i < lines.length; i++) {
      const l = lines[i]!;
      if (l.trim() === "" || FENCE.test(l) || QUOTE.test(l) || HEADING.test(l) || RULE.test(l)) break;
      if (para.length > 0 && (BULLET.test(l) || NUMBER.test(l))) break;
      para.push(l);
    }
    out.push({ html: inline(para.join("\n")), paragraph: true });
  }
  if (out.length === 1) return [out[0]!.html];
  return out.map((b) => (b.paragraph ? `<p>${b.html}</p>` : b.html));
}

const wrap = (parts: string[]) => parts.join("");

/** HTML (Matrix's allowed subset) for the markup. */
export function markdownToHtml(markdown: string): string {
  return sanitizeHtml(wrap(blocks(markdown.replace(/\r\n?/g, "\n").split("\n"))));
}

// --- HTML -> markup -------------------------------------------------------------------------

const BREAK = "\u0000";

function escapeMarkdown(text: string): string {
  return text
    .replace(/[\\`*~[\]]|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu, "\\$&")
    .replace(/^(\s*)([>#+-]|\d+\.)(?=\s|$)/gm, (_, space: string, m: string) =>
      /^\d/.test(m) ? `${space}${m.slice(0, -1)}\\.` : `${space}\\${m}`,
    );
}

function mdNodes(nodes: readonly Node[]): string {
  let out = "";
  for (const node of nodes)
    out += typeof node === "string" ? escapeMarkdown(node.replace(/[ \t\r\n]+/g, " ")) : md(node);
  return out;
}

function finish(text: string): string {
  return text
    .replace(/[ \t]*\u0000[\u0000 \t]*/g, "\n\n")
    .replace(/\n{3,}/g, "\n\n")
    .replace(/^\n+|\n+$/g, "");
}

const prefix = (text: string, first: string, rest: string) =>
  text
    .split("\n")
    .map((l, i) => (i === 0 ? first : l === "" && rest.trim() === "" ? "" : rest) + l)
    .join("\n");

function md(el: Element): string {
  const inner = () => mdNodes(el.children);
  switch (el.tag) {
    case "strong":
    case "b":
      return `**${inner()}**`;
    case "em":
    case "i":
      return `*${inner()}*`;
    case "del":
    case "strike":
    case "s":
      return `~~${inner()}~~`;
    case "code":
      return `\`${textContent(el.children)}\``;
    case "br":
      return "\n";
    case "hr":
      return `${BREAK}---${BREAK}`;
    case "img":
      return escapeMarkdown(el.attrs.alt ?? "");
    case "a": {
      const href = el.attrs.href;
      const text = textContent(el.children);
      if (href === undefined) return inner();
      return text === href ? href : `[${inner()}](${href})`;
    }
    case "pre": {
      const code = el.children.find((c): c is Element => typeof c !== "string" && c.tag === "code");
      const lang = code?.attrs.class?.replace(/^language-/, "") ?? "";
      return `${BREAK}\`\`\`${lang}\n${textContent(el.children).replace(/\n$/, "")}\n\`\`\`${BREAK}`;
    }
    case "blockquote":
      return `${BREAK}${prefix(finish(inner()), "> ", "> ").replace(/^> $/gm, ">")}${BREAK}`;
    case "ul":
    case "ol": {
      let n = el.tag === "ol" ? Number(el.attrs.start ?? 1) : 0;
      const items = el.children
        .filter((c): c is Element => typeof c !== "string")
        .map((li) => {
          const marker = el.tag === "ol" ? `${n++}. ` : "- ";
          return prefix(
            finish(mdNodes(li.children)).replace(/\n\n/g, "\n"),
            marker,
            " ".repeat(marker.length),
          );
        });
      return `${BREAK}${items.join("\n")}${BREAK}`;
    }
    case "h1":
    case "h2":
    case "h3":
    case "h4":
    case "h5":
    case "h6":
      return `${BREAK}${"#".repeat(Number(el.tag[1]))} ${inner()}${BREAK}`;
    case "p":
    case "div":
    case "table":
    case "tr":
    case "details":
      return `${BREAK}${inner()}${BREAK}`;
    default:
      return inner();
  }
}

/** The markup for Matrix HTML (sanitised first); markdownToHtml of it gives the same HTML back. */
export function htmlToMarkdown(html: string): string {
  return finish(mdNodes(parseHtml(html)));
}
