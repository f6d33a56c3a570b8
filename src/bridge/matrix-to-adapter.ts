/**
 * Turns pushed Matrix room events into what the adapter contract speaks (MatrixMessage,
 * MatrixEdit, ...). Pure functions: no I/O, no store. The caller resolves display names and
 * remote ids and passes them in.
 */
import type {
  MatrixEdit,
  MatrixMembership,
  MatrixMessage,
  MatrixReaction,
  MatrixRedaction,
  MatrixRoomChange,
  MatrixSender,
} from "../adapter/adapter.js";
import type { MatrixEvent } from "../matrix/events.js";
import { mentionsOf } from "./mentions-in.js";
import { matrixFileOf } from "../media/matrix-file.js";

/** What a room event means to an adapter; `ignored` events reach no handler. */
export type Classified =
  | { kind: "message"; message: MatrixMessage }
  | { kind: "edit"; edit: MatrixEdit }
  | { kind: "redaction"; redaction: MatrixRedaction }
  | { kind: "reaction"; reaction: MatrixReaction }
  | { kind: "membership"; membership: MatrixMembership }
  | { kind: "roomChange"; change: MatrixRoomChange }
  | { kind: "ignored"; why: string };

function obj(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** What an event's `m.relates_to` says: the event it points at, how, and what it replies to. */
export interface Relation {
  relType?: string;
  eventId?: string;
  key?: string;
  replyTo?: string;
  /** For an m.thread relation: `replyTo` is only the fallback for clients without threads. */
  isFallingBack?: boolean;
}

const NO_RELATION: Readonly<Relation> = Object.freeze({});

/** The event id a relation points at, and its rel_type, if the event has one. */
export function relation(event: MatrixEvent): Readonly<Relation> {
  const rel = obj(event.content["m.relates_to"]);
  if (!rel) return NO_RELATION; // most events: nothing to allocate
  const out: Relation = {};
  const relType = str(rel.rel_type);
  const eventId = str(rel.event_id);
  const key = str(rel.key);
  const replyTo = str(obj(rel["m.in_reply_to"])?.event_id);
  if (relType !== undefined) out.relType = relType;
  if (eventId !== undefined) out.eventId = eventId;
  if (key !== undefined) out.key = key;
  if (replyTo !== undefined) out.replyTo = replyTo;
  if (rel.is_falling_back === true) out.isFallingBack = true;
  return out;
}

/**
 * Removes the reply fallback a client prepends to a reply (`> <@a:b> quoted` lines and a blank
 * line in `body`; the `<mx-reply>` block in `formatted_body`), so the remote side sees what
 * the user typed.
 */
export function stripReplyFallback(body: string, html?: string): { body: string; html?: string } {
  let text = body;
  if (text.startsWith("> ")) {
    const lines = text.split("\n");
    let i = 0;
    while (i < lines.length && lines[i]!.startsWith(">")) i++;
    if (i < lines.length && lines[i] === "") i++;
    text = lines.slice(i).join("\n");
  }
  const out: { body: string; html?: string } = { body: text };
  if (html !== undefined) out.html = html.replace(/^<mx-reply>[\s\S]*?<\/mx-reply>/, "");
  return out;
}

function textOf(content: Record<string, unknown>): { msgtype: string; body: string; html?: string } {
  const msgtype = str(content.msgtype) ?? "m.text";
  const body = str(content.body) ?? "";
  const html = content.format === "org.matrix.custom.html" ? str(content.formatted_body) : undefined;
  return html === undefined ? { msgtype, body } : { msgtype, body, html };
}

/**
 * Classifies one room event. `sender` carries the resolved display name; `remoteIdOf` maps a
 * Matrix event id to the remote message id the bridge recorded for it (or undefined); `rel`
 * is `relation(event)`, for a caller that has it already; `ghostRemoteId` maps a Matrix user
 * id to the remote id of the ghost it is (null for anyone else), for mentions.
 */
export function classifyEvent(
  event: MatrixEvent,
  sender: MatrixSender,
  remoteIdOf: (eventId: string) => string | undefined,
  rel: Readonly<Relation> = relation(event),
  ghostRemoteId: (userId: string) => string | null = () => null,
): Classified {
  const target = (eventId: string) => {
    const remoteId = remoteIdOf(eventId);
    return remoteId === undefined ? { eventId } : { eventId, remoteId };
  };
  // Object literals, not `{ ...base, ... }`: V8 spreads a small object like this in
  // microseconds (slower than the rest of the event's path together).
  const eventId = event.event_id;

  switch (event.type) {
    case "m.room.message":
    case "m.sticker": {
      if (event.state_key !== undefined) return { kind: "ignored", why: "state event with a message type" };
      if (rel.relType === "m.replace" && rel.eventId !== undefined) {
        const newContent = obj(event.content["m.new_content"]) ?? event.content;
        const text = textOf(newContent);
        const edit: MatrixEdit = {
          eventId,
          sender,
          raw: event,
          ts: event.origin_server_ts,
          target: target(rel.eventId),
          msgtype: text.msgtype,
          body: text.body,
        };
        if (text.html !== undefined) edit.html = text.html;
        return { kind: "edit", edit };
      }
      const text = textOf(event.content);
      const msgtype = event.type === "m.sticker" ? "m.sticker" : text.msgtype;
      const thread = rel.relType === "m.thread" && rel.eventId !== undefined ? rel.eventId : undefined;
      // A thread's fallback reply is there for clients without threads, not a reply.
      const replyTo = thread !== undefined && rel.isFallingBack ? undefined : rel.replyTo;
      const stripped = replyTo !== undefined ? stripReplyFallback(text.body, text.html) : text;
      const message: MatrixMessage = {
        eventId,
        sender,
        raw: event,
        ts: event.origin_server_ts,
        msgtype,
        body: stripped.body,
      };
      if (stripped.html !== undefined) message.html = stripped.html;
      const url = str(event.content.url);
      if (url !== undefined) message.mediaUrl = url;
      if (replyTo !== undefined) message.replyTo = target(replyTo);
      if (thread !== undefined) {
        const root = remoteIdOf(thread);
        message.thread =
          root === undefined ? { rootEventId: thread } : { rootEventId: thread, rootRemoteId: root };
      }
      const mentions = mentionsOf(event.content, stripped.body, stripped.html, ghostRemoteId);
      if (mentions) message.mentions = mentions;
      const file = matrixFileOf(msgtype, event.content);
      if (file !== undefined) message.file = file;
      return { kind: "message", message };
    }
    case "m.room.redaction": {
      // Room versions up to 10 put `redacts` at the top level; v11 moved it into content.
      const redacts = str(event.redacts) ?? str(event.content.redacts);
      if (redacts === undefined) return { kind: "ignored", why: "redaction without redacts" };
      const redaction: MatrixRedaction = {
        eventId,
        sender,
        raw: event,
        ts: event.origin_server_ts,
        target: target(redacts),
      };
      const reason = str(event.content.reason);
      if (reason !== undefined) redaction.reason = reason;
      return { kind: "redaction", redaction };
    }
    case "m.reaction": {
      if (rel.relType !== "m.annotation" || rel.eventId === undefined || rel.key === undefined) {
        return { kind: "ignored", why: "reaction without an m.annotation relation" };
      }
      return {
        kind: "reaction",
        reaction: {
          eventId,
          sender,
          raw: event,
          ts: event.origin_server_ts,
          target: target(rel.eventId),
          key: rel.key,
        },
      };
    }
    case "m.room.member": {
      const membership = str(event.content.membership);
      if (event.state_key === undefined || membership === undefined) {
        return { kind: "ignored", why: "member event without state_key or membership" };
      }
      if (!["join", "leave", "invite", "ban", "knock"].includes(membership)) {
        return { kind: "ignored", why: `unknown membership ${membership}` };
      }
      const out: MatrixMembership = {
        eventId,
        sender,
        raw: event,
        userId: event.state_key,
        membership: membership as MatrixMembership["membership"],
      };
      const previous = str(obj(obj(event.unsigned)?.prev_content)?.membership);
      if (previous !== undefined) out.previous = previous;
      const displayName = str(event.content.displayname);
      if (displayName !== undefined) out.displayName = displayName;
      const reason = str(event.content.reason);
      if (reason !== undefined) out.reason = reason;
      return { kind: "membership", membership: out };
    }
    case "m.room.name":
    case "m.room.topic":
    case "m.room.avatar": {
      if (event.state_key !== "") return { kind: "ignored", why: `${event.type} with a non-empty state_key` };
      const kind = event.type === "m.room.name" ? "name" : event.type === "m.room.topic" ? "topic" : "avatar";
      const field = kind === "avatar" ? "url" : kind;
      const value = str(event.content[field]) ?? "";
      return { kind: "roomChange", change: { eventId, sender, raw: event, kind, value } };
    }
    default:
      return { kind: "ignored", why: `no adapter capability for ${event.type}` };
  }
}

/** The adapter method a classified event needs; used to tell users about missing capabilities. */
export const HANDLER_FOR = {
  message: "onMessage",
  edit: "onEdit",
  redaction: "onRedaction",
  reaction: "onReaction",
  membership: "onMembership",
  roomChange: "onRoomChange",
} as const;
