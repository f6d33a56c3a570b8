/** Matrix -> remote: who a message mentions (m.mentions, else the pills in its HTML). */
import type { MatrixMessage } from "../adapter/adapter.js";
import { pillUserId } from "../formatting/pills.js";
import { parseHtml, type Node } from "../formatting/tree.js";

type Mentions = NonNullable<MatrixMessage["mentions"]>;

/** The users the pills in `html` point at, in order, each once. */
export function pilledUsers(html: string): string[] {
  const found = new Set<string>();
  const walk = (nodes: readonly Node[]) => {
    for (const node of nodes) {
      if (typeof node === "string") continue;
      const userId =
        node.tag === "a" && node.attrs.href !== undefined ? pillUserId(node.attrs.href) : undefined;
      if (userId !== undefined) found.add(userId);
      walk(node.children);
    }
  };
  if (html.includes("matrix.to")) walk(parseHtml(html));
  return [...found];
}

/**
 * The mentions of a message's content: `m.mentions` when the sender's client wrote one (the
 * current spec), else its HTML's pills and "@room" in its body (older clients). Undefined
 * when it mentions nobody.
 */
export function mentionsOf(
  content: Record<string, unknown>,
  body: string,
  html: string | undefined,
  ghostRemoteId: (userId: string) => string | null,
): Mentions | undefined {
  const declared = content["m.mentions"];
  let userIds: string[];
  let room: boolean;
  if (typeof declared === "object" && declared !== null && !Array.isArray(declared)) {
    const m = declared as { user_ids?: unknown; room?: unknown };
    const ids = Array.isArray(m.user_ids) ? m.user_ids : [];
    userIds = [...new Set(ids.filter((u): u is string => typeof u === "string" && u.startsWith("@")))];
    room = m.room === true;
  } else {
    userIds = html !== undefined ? pilledUsers(html) : [];
    room = /(^|\s)@room\b/.test(body);
  }
  // The pills name ghosts too when m.mentions is there, for the text of a pill not mentioned.
  const all = html !== undefined && declared !== undefined ? [...userIds, ...pilledUsers(html)] : userIds;
  if (userIds.length === 0 && !room) return undefined;
  const ghosts: Record<string, string> = {};
  for (const userId of all) {
    const remoteId = ghostRemoteId(userId);
    if (remoteId !== null) ghosts[userId] = remoteId;
  }
  const remoteUsers = userIds.flatMap((u) => (ghosts[u] !== undefined ? [ghosts[u]] : []));
  return { userIds, remoteUsers, room, ghosts };
}
