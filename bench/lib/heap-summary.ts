/**
 * Summarises V8 heap snapshots (node:v8 writeHeapSnapshot) by constructor, as the Summary
 * view of Chrome DevTools does: objects counted and their own (shallow) sizes, grouped by
 * constructor name for objects and closures, by kind for everything else ("(string)",
 * "(array)", …). `heapDelta` says what one snapshot holds beyond another.
 */
import { readFileSync } from "node:fs";

interface HeapSnapshotFile {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  /** "LiveLogin", "(closure) connect", "(string)", "(array)", … */
  name: string;
  count: number;
  bytes: number;
}

/** Counts and shallow sizes by constructor. */
export function heapSummary(path: string): Map<string, HeapGroup> {
  const snap = JSON.parse(readFileSync(path, "utf8")) as HeapSnapshotFile;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const groups = new Map<string, HeapGroup>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const name = snap.strings[snap.nodes[i + nameAt]!]!;
    const key =
      type === "object" ? name : type === "closure" ? `(closure) ${name || "anonymous"}` : `(${type})`;
    const g = groups.get(key) ?? { name: key, count: 0, bytes: 0 };
    g.count++;
    g.bytes += snap.nodes[i + sizeAt]!;
    groups.set(key, g);
  }
  return groups;
}

/** What `after` holds beyond `before`, by constructor, the largest growth first. */
export function heapDelta(before: string, after: string, top = 15): HeapGroup[] {
  const a = heapSummary(before);
  const b = heapSummary(after);
  const out: HeapGroup[] = [];
  for (const [key, g] of b) {
    const was = a.get(key);
    out.push({ name: key, count: g.count - (was?.count ?? 0), bytes: g.bytes - (was?.bytes ?? 0) });
  }
  return out.sort((x, y) => y.bytes - x.bytes).slice(0, top);
}
