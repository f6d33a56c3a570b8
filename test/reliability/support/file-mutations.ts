/**
 * Ways a YAML file given to the bridge can be wrong: structural mutations of its parsed
 * document (a key deleted, a value of the wrong type) and textual ones (truncated, bytes
 * flipped, binary junk, tabs, duplicate keys, an alias bomb, a huge file). Each mutation
 * says which key it touched, so the test can demand the error name it.
 */
import { dump } from "js-yaml";
import type { Random } from "./random.js";

export interface Mutation {
  /** What was done, for failure messages. */
  label: string;
  /** The dotted key path touched (as the validators print it), or undefined for text damage. */
  key?: string;
  /** The top-level key of `key`. */
  top?: string;
  content: string | Buffer;
}

type Doc = Record<string, unknown>;

type Step = string | number;

/** Key paths of a document (maps and leaves), as steps: [["namespaces"], ["namespaces", "users"], ...]. */
export function keyPaths(value: unknown, prefix: Step[] = [], depth = 0): Step[][] {
  if (depth > 3 || value === null || typeof value !== "object") return [];
  const out: Step[][] = [];
  const entries: Array<[Step, unknown]> = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.entries(value);
  for (const [step, v] of entries) {
    const path = [...prefix, step];
    out.push(path, ...keyPaths(v, path, depth + 1));
  }
  return out;
}

/** A path the way the validators print it: `namespaces.users[0].regex`. */
export function printPath(path: readonly Step[]): string {
  return path.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
}

/** A copy of `doc` with the value at `path` replaced (or deleted when `value` is DELETE). */
export function mutateAt(doc: Doc, path: readonly Step[], value: unknown): Doc {
  const copy = structuredClone(doc);
  let parent = copy as Record<Step, unknown>;
  for (const step of path.slice(0, -1)) parent = parent[step] as Record<Step, unknown>;
  const last = path[path.length - 1]!;
  if (value === DELETE) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = value;
  return copy;
}

export const DELETE = Symbol("delete");

const WRONG_VALUES: Array<[string, unknown]> = [
  ["a number", 42],
  ["a negative number", -1],
  ["a string", "not what it should be"],
  ["an empty string", ""],
  ["a list", ["x", 1]],
  ["a map", { nested: true }],
  ["null", null],
  ["a boolean", true],
  ["a 100 000-character string", "x".repeat(100_000)],
];

/** Every key deleted, and every key given every wrong kind of value. */
export function structuralMutations(doc: Doc): Mutation[] {
  const out: Mutation[] = [];
  for (const path of keyPaths(doc)) {
    const key = printPath(path);
    const top = String(path[0]);
    out.push({ label: `${key} deleted`, key, top, content: dump(mutateAt(doc, path, DELETE)) });
    for (const [what, value] of WRONG_VALUES) {
      out.push({ label: `${key} set to ${what}`, key, top, content: dump(mutateAt(doc, path, value)) });
    }
  }
  return out;
}

/** Damage to the text itself. */
export function textMutations(text: string, random: Random, count: number): Mutation[] {
  const out: Mutation[] = [
    { label: "empty file", content: "" },
    { label: "only a comment", content: "# nothing here\n" },
    { label: "a scalar document", content: "just a string\n" },
    { label: "a list document", content: "- a\n- b\n" },
    { label: "binary junk", content: Buffer.from(Array.from({ length: 4096 }, () => random.int(0, 255))) },
    {
      label: "UTF-16 with a BOM",
      content: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]),
    },
    { label: "tabs for indentation", content: text.replace(/^ {2}/gm, "\t") },
    {
      label: "duplicate top-level key",
      content: `${text}\n${text.split("\n").find((l) => /^\w/.test(l))}\n`,
    },
    {
      label: "alias bomb",
      content:
        `a: &a ["x","x","x","x","x","x","x","x","x"]\n` +
        Array.from(
          { length: 8 },
          (_, i) => `${"bcdefghi"[i]}: &${"bcdefghi"[i]} [${Array(9).fill(`*${"abcdefgh"[i]}`).join(",")}]`,
        ).join("\n") +
        "\n",
    },
    {
      label: "8 MB comment followed by the file",
      content: `${"# padding padding padding padding padding padding padding padding padding\n".repeat(110_000)}${text}\nunterminated: "`,
    },
  ];
  for (let i = 0; i < count; i++) {
    const at = random.int(1, text.length - 1);
    const roll = random.next();
    if (roll < 0.4) out.push({ label: `truncated at ${at}`, content: text.slice(0, at) });
    else if (roll < 0.7) {
      const bytes = Buffer.from(text, "utf8");
      for (let k = 0; k < 4; k++) bytes[random.int(0, bytes.length - 1)] = random.int(0, 255);
      out.push({ label: `4 bytes flipped (#${i})`, content: bytes });
    } else {
      const junk = random.pick([": : :", "- [", "{", "]]", "'", '"', "*nope", "&", "!!binary x", "? x"]);
      out.push({ label: `"${junk}" inserted at ${at}`, content: text.slice(0, at) + junk + text.slice(at) });
    }
  }
  return out;
}
