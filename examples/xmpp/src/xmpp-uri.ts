/**
 * Third-party URIs (RFC 5122 `xmpp:` URIs) to remote ids. Pure: no I/O.
 *
 * - `xmpp:lobby@conference.example.org` and `xmpp:lobby@conference.example.org?join` name
 *   the room `lobby`;
 * - `xmpp:lobby@conference.example.org/alice` names the occupant `alice`.
 *
 * Only JIDs on the configured MUC service are ours; anything else maps to null. The
 * authority form (`xmpp://account@host/lobby@conference...`) is accepted and its authority
 * ignored. Percent-encoded characters are decoded.
 */
import { isValidNick, normalizeRoomId, splitJid } from "./xmpp-ids.js";

interface ParsedMucUri {
  room: string;
  nick: string;
}

function parse(uri: URL, mucDomain: string): ParsedMucUri | null {
  if (uri.protocol !== "xmpp:") return null;
  let path = uri.pathname;
  if (uri.host !== "" || path.startsWith("/")) path = path.replace(/^\/+/, "");
  let address: string;
  try {
    address = decodeURIComponent(path);
  } catch {
    return null;
  }
  const { local, domain, resource } = splitJid(address);
  if (domain !== mucDomain.toLowerCase() || local === "") return null;
  const room = normalizeRoomId(local);
  if (room === null) return null;
  return { room, nick: resource };
}

/** The room id an `xmpp:room@mucDomain[?join]` URI names, or null. */
export function roomFromUri(uri: URL, mucDomain: string): string | null {
  const parsed = parse(uri, mucDomain);
  if (!parsed || parsed.nick !== "") return null;
  const action = uri.search.replace(/^\?/, "").split(";")[0] ?? "";
  if (action !== "" && action !== "join") return null;
  return parsed.room;
}

/** The occupant nick an `xmpp:room@mucDomain/nick` URI names, or null. */
export function userFromUri(uri: URL, mucDomain: string): string | null {
  const parsed = parse(uri, mucDomain);
  if (!parsed || !isValidNick(parsed.nick)) return null;
  return parsed.nick;
}
