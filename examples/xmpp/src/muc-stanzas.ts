/**
 * Multi-user chat stanzas (XEP-0045) in and out: parsing what a MUC service sends into plain
 * events, and building what the bridge sends. Pure: no I/O, no state.
 */
import { xml, type Element } from "@xmpp/client";
import { splitJid } from "./xmpp-ids.js";

export const NS_MUC = "http://jabber.org/protocol/muc";
export const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
export const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";
export const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
export const NS_DATA = "jabber:x:data";
export const NS_DELAY = "urn:xmpp:delay";
export const NS_SID = "urn:xmpp:sid:0";
export const NS_CORRECT = "urn:xmpp:message-correct:0";
export const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

/** An occupant's presence in a room (an arrival, a change, or a departure). */
export interface OccupantPresence {
  kind: "presence";
  /** The room's local part, as the server spells it. */
  roomLocal: string;
  nick: string;
  available: boolean;
  /** muc#user status codes: 110 self, 201 room created, 210 nick rewritten, 303 nick change, 307 kick, 301 ban... */
  codes: Set<string>;
  /** With status 303: the occupant's new nick. */
  newNick?: string;
  /** The reason given for a kick or ban, or the presence's status text. */
  reason?: string;
}

/** A presence of type "error" for a room: a join was refused. */
export interface PresenceError {
  kind: "presence-error";
  roomLocal: string;
  nick: string;
  condition: string;
  text?: string;
}

/** A groupchat message with a body. */
export interface GroupMessage {
  kind: "message";
  roomLocal: string;
  /** The sender's nick; "" for a message from the room itself. */
  nick: string;
  body: string;
  /** The `id` attribute, as the sender set it. */
  id?: string;
  /** XEP-0359 origin-id, as the sender set it. */
  originId?: string;
  /** XEP-0359 stanza-id assigned by the room (only trusted when `by` is the room). */
  stanzaId?: string;
  /** XEP-0203 delay: when the message was originally sent (ms). */
  delayedTs?: number;
  /** XEP-0308: the id of the message this one corrects. */
  replaces?: string;
}

/** A subject change (or, when joining, the current subject). */
export interface SubjectChange {
  kind: "subject";
  roomLocal: string;
  /** Who set it; "" when the room itself sends it. */
  nick: string;
  subject: string;
  delayedTs?: number;
}

/** A message of type "error" from a room (e.g. a refused subject change). */
export interface MessageError {
  kind: "message-error";
  roomLocal: string;
  id?: string;
  condition: string;
  text?: string;
}

export type MucEvent = OccupantPresence | PresenceError | GroupMessage | SubjectChange | MessageError;

function stanzaError(el: Element): { condition: string; text?: string } {
  const error = el.getChild("error");
  const condition = error?.getChildElements().find((c) => c.getNS() === NS_STANZAS && c.name !== "text");
  const text = error?.getChildText("text", NS_STANZAS) ?? undefined;
  return { condition: condition?.name ?? "undefined-condition", ...(text ? { text } : {}) };
}

function parseStamp(el: Element): number | undefined {
  const stamp = el.getChild("delay", NS_DELAY)?.attrs.stamp;
  if (stamp === undefined) return undefined;
  const ts = Date.parse(stamp);
  return Number.isFinite(ts) ? ts : undefined;
}

/**
 * What a stanza from the MUC service `mucDomain` means, or null when it is not a MUC stanza
 * for us (another sender, an iq, a chat state without a body, ...).
 */
export function parseMucStanza(el: Element, mucDomain: string): MucEvent | null {
  const from = el.attrs.from;
  if (from === undefined) return null;
  const { local: roomLocal, domain, resource: nick } = splitJid(from);
  if (domain !== mucDomain || roomLocal === "") return null;

  if (el.name === "presence") {
    if (el.attrs.type === "error") return { kind: "presence-error", roomLocal, nick, ...stanzaError(el) };
    if (nick === "") return null;
    const x = el.getChild("x", NS_MUC_USER);
    const codes = new Set((x?.getChildren("status") ?? []).map((s) => s.attrs.code ?? ""));
    codes.delete("");
    const item = x?.getChild("item");
    const presence: OccupantPresence = {
      kind: "presence",
      roomLocal,
      nick,
      available: el.attrs.type !== "unavailable",
      codes,
    };
    if (item?.attrs.nick) presence.newNick = item.attrs.nick;
    const reason = item?.getChildText("reason") || el.getChildText("status") || undefined;
    if (reason) presence.reason = reason;
    return presence;
  }

  if (el.name !== "message") return null;
  if (el.attrs.type === "error") {
    return {
      kind: "message-error",
      roomLocal,
      ...(el.attrs.id ? { id: el.attrs.id } : {}),
      ...stanzaError(el),
    };
  }
  if (el.attrs.type !== "groupchat") return null;
  const delayedTs = parseStamp(el);
  const body = el.getChildText("body");
  const subject = el.getChild("subject");
  if (body === null) {
    // XEP-0045 §8.1: a subject change is a message with a subject and no body.
    if (!subject) return null;
    return {
      kind: "subject",
      roomLocal,
      nick,
      subject: subject.getText(),
      ...(delayedTs ? { delayedTs } : {}),
    };
  }
  const message: GroupMessage = { kind: "message", roomLocal, nick, body };
  if (el.attrs.id) message.id = el.attrs.id;
  const origin = el.getChild("origin-id", NS_SID)?.attrs.id;
  if (origin) message.originId = origin;
  const roomBare = from.split("/")[0]?.toLowerCase();
  const stanzaId = el.getChildren("stanza-id", NS_SID).find((s) => s.attrs.by?.toLowerCase() === roomBare)
    ?.attrs.id;
  if (stanzaId) message.stanzaId = stanzaId;
  if (delayedTs !== undefined) message.delayedTs = delayedTs;
  const replaces = el.getChild("replace", NS_CORRECT)?.attrs.id;
  if (replaces) message.replaces = replaces;
  return message;
}

/**
 * The remote id of a message: the sender's own id (origin-id, else the `id` attribute), which
 * is what XEP-0308 corrections reference, else the room's stanza-id.
 */
export function messageRemoteId(message: GroupMessage): string | undefined {
  return message.originId ?? message.id ?? message.stanzaId;
}

// -- building -----------------------------------------------------------------------------

/** Enter a room as `nick`, asking for no history (XEP-0045 §7.2.14, maxstanzas="0"). */
export function joinPresence(roomJid: string, nick: string): Element {
  return xml(
    "presence",
    { to: `${roomJid}/${nick}` },
    xml("x", { xmlns: NS_MUC }, xml("history", { maxstanzas: 0 })),
  );
}

/** Leave a room. */
export function leavePresence(roomJid: string, nick: string, status?: string): Element {
  return xml(
    "presence",
    { to: `${roomJid}/${nick}`, type: "unavailable" },
    status ? xml("status", {}, status) : null,
  );
}

/** A groupchat message with an origin-id (XEP-0359) equal to its `id`. */
export function groupMessage(roomJid: string, id: string, body: string, replaces?: string): Element {
  return xml(
    "message",
    { to: roomJid, type: "groupchat", id },
    xml("body", {}, body),
    replaces ? xml("replace", { xmlns: NS_CORRECT, id: replaces }) : null,
    xml("origin-id", { xmlns: NS_SID, id }),
  );
}

/** Sets the room's subject (XEP-0045 §8.1). */
export function subjectMessage(roomJid: string, id: string, subject: string): Element {
  return xml("message", { to: roomJid, type: "groupchat", id }, xml("subject", {}, subject));
}

/** Accepts the default configuration of a room we just created (an "instant room", §10.1.2). */
export function instantRoomIq(roomJid: string): Element {
  return xml(
    "iq",
    { to: roomJid, type: "set" },
    xml("query", { xmlns: NS_MUC_OWNER }, xml("x", { xmlns: NS_DATA, type: "submit" })),
  );
}

/** Asks a room for its identity and features (XEP-0030). */
export function discoInfoIq(roomJid: string): Element {
  return xml("iq", { to: roomJid, type: "get" }, xml("query", { xmlns: NS_DISCO_INFO }));
}

/** The room's name from a disco#info result (its conference identity's name), else its local part. */
export function roomNameFromDisco(result: Element, roomLocal: string): string {
  const query = result.getChild("query", NS_DISCO_INFO);
  const identity = query?.getChildren("identity").find((i) => i.attrs.category === "conference");
  return identity?.attrs.name?.trim() || roomLocal;
}
