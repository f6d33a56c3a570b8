/**
 * What of a fetched history batch is sent: pure, no I/O. Checks each message's shape, drops
 * what the query excluded (not after the anchor, older than `notBefore`), keeps one message
 * per remote id, sorts by remote time (stable: equal times keep the adapter's order) and
 * keeps the newest `limit`. Remote ids already bridged are the caller's to drop (they need
 * the message map).
 */
import type { HistoryMessage, HistoryQuery } from "../adapter/adapter.js";

export interface Selected {
  /** Oldest first. */
  messages: HistoryMessage[];
  /** Why each malformed message was dropped, e.g. `message 3: ts must be ...`. */
  invalid: string[];
}

/** What is wrong with one fetched message, or null. */
export function historyMessageProblem(m: unknown): string | null {
  if (typeof m !== "object" || m === null) return `must be an object, got ${JSON.stringify(m)}`;
  const msg = m as Partial<Record<keyof HistoryMessage, unknown>>;
  if (typeof msg.remoteId !== "string" || msg.remoteId === "")
    return `remoteId must be a non-empty string, got ${JSON.stringify(msg.remoteId)}`;
  if (typeof msg.from !== "string" || msg.from === "")
    return `from must be a non-empty string, got ${JSON.stringify(msg.from)}`;
  if (typeof msg.ts !== "number" || !Number.isInteger(msg.ts) || msg.ts < 0)
    return `ts must be a non-negative integer (ms), got ${JSON.stringify(msg.ts)}`;
  const content = msg.content as { body?: unknown } | string | undefined;
  const body = typeof content === "string" ? content : content?.body;
  if (typeof body !== "string") return `content needs a string body, got ${JSON.stringify(msg.content)}`;
  for (const key of ["replyTo", "thread", "externalUrl"] as const)
    if (msg[key] !== undefined && (typeof msg[key] !== "string" || msg[key] === ""))
      return `${key} must be a non-empty string when set, got ${JSON.stringify(msg[key])}`;
  return null;
}

/** The messages of `fetched` to send for `query`, oldest first. Throws when it is not an array. */
export function selectHistory(fetched: unknown, query: HistoryQuery): Selected {
  if (!Array.isArray(fetched))
    throw new TypeError(`fetchHistory must resolve to an array of messages, got ${JSON.stringify(fetched)}`);
  const invalid: string[] = [];
  const byId = new Set<string>();
  const kept: Array<{ m: HistoryMessage; i: number }> = [];
  fetched.forEach((m: unknown, i) => {
    const problem = historyMessageProblem(m);
    if (problem !== null) {
      invalid.push(`message ${i}: ${problem}`);
      return;
    }
    const msg = m as HistoryMessage;
    if (query.notBefore !== undefined && msg.ts < query.notBefore) return;
    if (query.after && (msg.remoteId === query.after.remoteId || msg.ts < query.after.ts)) return;
    if (byId.has(msg.remoteId)) return;
    byId.add(msg.remoteId);
    kept.push({ m: msg, i });
  });
  kept.sort((a, b) => a.m.ts - b.m.ts || a.i - b.i);
  const limit = Math.max(0, query.limit);
  return { messages: kept.slice(Math.max(0, kept.length - limit)).map((k) => k.m), invalid };
}
