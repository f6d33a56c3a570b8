/**
 * Summarises a V8 .cpuprofile (from node --cpu-prof): where the process spent its samples,
 * by self time, grouped into idle (waiting for I/O), garbage collection, and code by origin
 * (a node_modules package, src/, node internals).
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
}

export interface ProfileSummary {
  /** Shares (0-1) of all samples. */
  idle: number;
  gc: number;
  /** Share per origin ("sqlite3", "src/appservice", "node:internal", …), largest first. */
  byOrigin: Array<{ origin: string; share: number }>;
  /** The functions with the most self time. */
  topFunctions: Array<{ fn: string; share: number }>;
}

function origin(url: string, fn: string): string {
  if (fn === "(idle)") return "(idle)";
  if (fn === "(garbage collector)") return "(gc)";
  if (fn === "(program)") return "(program)";
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const src = /\/(src\/[^/]+)\//.exec(url);
  if (src) return src[1]!;
  if (url.startsWith("node:")) return "node internals";
  if (url === "") return "(native)";
  const bench = /\/(bench|test)\//.exec(url);
  return bench ? bench[1]! : "other";
}

export function summariseProfile(path: string, top = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const total = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
  const byOrigin = new Map<string, number>();
  const byFn = new Map<string, number>();
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const o = origin(url, functionName);
    byOrigin.set(o, (byOrigin.get(o) ?? 0) + hits);
    const short = url.replace(/^.*\/(node_modules|src|bench|test)\//, "$1/");
    const key = `${functionName || "(anonymous)"} ${short}${url ? `:${lineNumber + 1}` : ""}`;
    byFn.set(key, (byFn.get(key) ?? 0) + hits);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    idle: (byOrigin.get("(idle)") ?? 0) / total,
    gc: (byOrigin.get("(gc)") ?? 0) / total,
    byOrigin: sorted(byOrigin).map(([o, h]) => ({ origin: o, share: h / total })),
    topFunctions: sorted(byFn)
      .slice(0, top)
      .map(([fn, h]) => ({ fn, share: h / total })),
  };
}
