/**
 * Builds Matrix event content from what an adapter hands to the BridgeContext. Pure: no I/O.
 */
import type { MessageContent } from "../adapter/adapter.js";
import { addPills, type PillTarget } from "../formatting/add-pills.js";
import { textToHtml } from "../formatting/to-text.js";

export interface ContentOptions {
  externalUrl?: string;
  /** The Matrix event id this message replies to. */
  replyToEventId?: string;
  /** The root event of the thread it is in (an m.thread relation). */
  threadRootEventId?: string;
  /** The ghosts the content's `mentions` name, with the names that become pills. */
  mentions?: PillTarget[];
}

/** The m.relates_to of a reply and/or thread message, or undefined for neither. */
function relatesTo(opts: ContentOptions): Record<string, unknown> | undefined {
  const reply = opts.replyToEventId;
  const root = opts.threadRootEventId;
  if (root !== undefined)
    // Per the spec: a thread message not replying to anything in it falls back to a reply to the root.
    return {
      rel_type: "m.thread",
      event_id: root,
      is_falling_back: reply === undefined,
      "m.in_reply_to": { event_id: reply ?? root },
    };
  return reply === undefined ? undefined : { "m.in_reply_to": { event_id: reply } };
}

/** m.room.message content for a message: a string is m.text; html becomes formatted_body. */
export function messageContent(content: MessageContent, opts: ContentOptions = {}): Record<string, unknown> {
  const c = typeof content === "string" ? { body: content } : content;
  const out: Record<string, unknown> = { ...(c.extra ?? {}), msgtype: c.msgtype ?? "m.text", body: c.body };
  if (c.html !== undefined) {
    out.format = "org.matrix.custom.html";
    out.formatted_body = c.html;
  }
  if (opts.mentions !== undefined && opts.mentions.length > 0) {
    out["m.mentions"] = { user_ids: [...new Set(opts.mentions.map((m) => m.userId))] };
    const pilled = addPills(c.html ?? textToHtml(c.body), opts.mentions);
    if (pilled.changed) {
      out.format = "org.matrix.custom.html";
      out.formatted_body = pilled.html;
    }
  }
  if (opts.externalUrl !== undefined) out.external_url = opts.externalUrl;
  const rel = relatesTo(opts);
  if (rel !== undefined) out["m.relates_to"] = rel;
  return out;
}

/** An m.replace edit of `targetEventId`: the fallback body is prefixed with "* " as clients do. */
export function editContent(
  content: MessageContent,
  targetEventId: string,
  opts: Pick<ContentOptions, "externalUrl"> = {},
): Record<string, unknown> {
  const newContent = messageContent(content);
  const out: Record<string, unknown> = {
    ...newContent,
    body: `* ${String(newContent.body)}`,
    "m.new_content": newContent,
    "m.relates_to": { rel_type: "m.replace", event_id: targetEventId },
  };
  if (typeof newContent.formatted_body === "string") out.formatted_body = `* ${newContent.formatted_body}`;
  if (opts.externalUrl !== undefined) out.external_url = opts.externalUrl;
  return out;
}

/** An m.reaction annotating `targetEventId` with `key`. */
export function reactionContent(targetEventId: string, key: string): Record<string, unknown> {
  return { "m.relates_to": { rel_type: "m.annotation", event_id: targetEventId, key } };
}
