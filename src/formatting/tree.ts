/**
 * Parses HTML into a tree that holds only Matrix's allowed HTML (see allowed.ts): the one
 * place the sanitising rules are applied; sanitizeHtml, htmlToText and htmlToMarkdown all
 * read its result.
 */
import { ALLOWED, DROP_WITH_CONTENT, VOID } from "./allowed.js";
import { escapeAttribute, escapeHtml } from "./entities.js";
import { RAW_TEXT, tokenize } from "./tokenize.js";

export interface Element {
  tag: string;
  attrs: Record<string, string>;
  children: Node[];
}
export type Node = string | Element;

export interface ParseOptions {
  /** Input beyond this many characters is cut off before parsing (default 100 000). */
  maxLength?: number;
  /** Tags nested deeper than this are dropped, their content kept (default 100, as the spec advises). */
  maxDepth?: number;
}

const DEFAULT_MAX_LENGTH = 100_000;
const DEFAULT_MAX_DEPTH = 100;

function allowedAttrs(tag: string, attrs: Map<string, string>): Record<string, string> {
  const checks = ALLOWED.get(tag)!;
  const out: Record<string, string> = {};
  for (const [name, raw] of attrs) {
    const check = Object.hasOwn(checks, name) ? checks[name] : undefined;
    const value = check?.(raw);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The allowed content of `html` as a tree: bad tags and attributes dropped, tags balanced. */
export function parseHtml(html: string, opts: ParseOptions = {}): Node[] {
  const maxLength = opts.maxLength ?? DEFAULT_MAX_LENGTH;
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  const root: Element = { tag: "", attrs: {}, children: [] };
  const stack: Element[] = [root];
  /** While inside a dropped element: its name and how many of that name are open. */
  let skipping: { name: string; depth: number } | undefined;
  /** Tags dropped for depth, whose end tags must not close an outer element of that name. */
  const tooDeep = new Map<string, number>();
  for (const token of tokenize(html.length > maxLength ? html.slice(0, maxLength) : html)) {
    if (skipping) {
      if (token.type === "start" && token.name === skipping.name && !token.selfClosing) skipping.depth++;
      if (token.type === "end" && token.name === skipping.name && --skipping.depth === 0)
        skipping = undefined;
      continue;
    }
    const top = stack[stack.length - 1]!;
    switch (token.type) {
      case "text": {
        if (token.text.includes("\0")) token.text = token.text.replace(/\0/g, "\ufffd");
        const last = top.children[top.children.length - 1];
        if (typeof last === "string") top.children[top.children.length - 1] = last + token.text;
        else if (token.text !== "") top.children.push(token.text);
        break;
      }
      case "raw":
        break; // raw text elements are all dropped with their content
      case "start": {
        const { name } = token;
        if (DROP_WITH_CONTENT.has(name)) {
          // A raw-text element's content is already consumed; its end tag is next.
          if (!token.selfClosing || RAW_TEXT.has(name)) skipping = { name, depth: 1 };
          break;
        }
        if (!ALLOWED.has(name)) break; // unknown tag: dropped, its content kept
        if (stack.length > maxDepth) {
          if (!VOID.has(name)) tooDeep.set(name, (tooDeep.get(name) ?? 0) + 1);
          break;
        }
        const el: Element = { tag: name, attrs: allowedAttrs(name, token.attrs), children: [] };
        if (name === "img" && el.attrs.src === undefined) break; // an image of nothing
        top.children.push(el);
        if (!VOID.has(name)) stack.push(el);
        break;
      }
      case "end": {
        const deep = tooDeep.get(token.name);
        if (deep !== undefined) {
          if (deep <= 1) tooDeep.delete(token.name);
          else tooDeep.set(token.name, deep - 1);
          break;
        }
        // Closes the nearest open element of that name and all inside it; a stray end tag is ignored.
        for (let k = stack.length - 1; k > 0; k--) {
          if (stack[k]!.tag === token.name) {
            stack.length = k;
            break;
          }
        }
        break;
      }
    }
  }
  return root.children;
}

/** HTML for a tree from parseHtml. */
export function serializeHtml(nodes: readonly Node[]): string {
  let out = "";
  for (const node of nodes) {
    if (typeof node === "string") {
      out += escapeHtml(node);
      continue;
    }
    out += `<${node.tag}`;
    for (const [name, value] of Object.entries(node.attrs)) out += ` ${name}="${escapeAttribute(value)}"`;
    out += ">";
    if (VOID.has(node.tag)) continue;
    out += serializeHtml(node.children);
    out += `</${node.tag}>`;
  }
  return out;
}

/** The text inside a tree, without any markup. */
export function textContent(nodes: readonly Node[]): string {
  let out = "";
  for (const node of nodes) out += typeof node === "string" ? node : textContent(node.children);
  return out;
}
