import { pillHref } from "./pills.js";
import { parseHtml, serializeHtml, type Node } from "./tree.js";

/** A user to pill, and the names by which text may name them. */
export interface PillTarget {
  userId: string;
  names: string[];
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Matrix HTML (sanitised) with each whole-word occurrence of a user's names, outside links
 * and code, made a pill (`<a href="https://matrix.to/#/@user">name</a>`). `changed` tells
 * whether any pill was made.
 */
export function addPills(html: string, users: readonly PillTarget[]): { html: string; changed: boolean } {
  const byName = new Map<string, string>();
  for (const u of users)
    for (const name of u.names) if (name.trim() !== "" && !byName.has(name)) byName.set(name, u.userId);
  const names = [...byName.keys()].sort((a, b) => b.length - a.length);
  const nodes = parseHtml(html);
  if (names.length === 0) return { html: serializeHtml(nodes), changed: false };
  const re = new RegExp(
    `(?<![\\p{L}\\p{N}_])(?:${names.map(escapeRegex).join("|")})(?![\\p{L}\\p{N}_])`,
    "gu",
  );
  let changed = false;
  const walk = (list: Node[]): Node[] =>
    list.flatMap((node): Node[] => {
      if (typeof node !== "string") {
        if (node.tag !== "a" && node.tag !== "code" && node.tag !== "pre")
          node.children = walk(node.children);
        return [node];
      }
      const out: Node[] = [];
      let last = 0;
      for (const m of node.matchAll(re)) {
        if (m.index > last) out.push(node.slice(last, m.index));
        out.push({ tag: "a", attrs: { href: pillHref(byName.get(m[0])!) }, children: [m[0]] });
        last = m.index + m[0].length;
        changed = true;
      }
      if (last === 0) return [node];
      if (last < node.length) out.push(node.slice(last));
      return out;
    });
  const result = walk(nodes);
  return { html: serializeHtml(result), changed };
}
