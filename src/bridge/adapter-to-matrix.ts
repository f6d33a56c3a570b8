/**
 * Builds Matrix event content from what an adapter hands to the BridgeContext. Pure: no I/O.
 */
import type { MessageContent } from "../adapter/adapter.js";

export interface ContentOptions {
  externalUrl?: string;
  /** The Matrix event id this message replies to. */
  replyToEventId?: string;
}

/** m.room.message content for a message: a string is m.text; html becomes formatted_body. */
export function messageContent(content: MessageContent, opts: ContentOptions = {}): Record<string, unknown> {
  const c = typeof content === "string" ? { body: content } : content;
  const out: Record<string, unknown> = { ...(c.extra ?? {}), msgtype: c.msgtype ?? "m.text", body: c.body };
  if (c.html !== undefined) {
    out.format = "org.matrix.custom.html";
    out.formatted_body = c.html;
  }
  if (opts.externalUrl !== undefined) out.external_url = opts.externalUrl;
  if (opts.replyToEventId !== undefined)
    out["m.relates_to"] = { "m.in_reply_to": { event_id: opts.replyToEventId } };
  return out;
}

/** An m.replace edit of `targetEventId`: the fallback body is prefixed with "* " as clients do. */
export function editContent(
  content: MessageContent,
  targetEventId: string,
  opts: Omit<ContentOptions, "replyToEventId"> = {},
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
