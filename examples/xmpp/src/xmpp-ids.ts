/**
 * Remote ids of the XMPP adapter. A room's id is the local part of its MUC JID, in the
 * canonical (lower-case, NFKC) spelling the server uses (`Lobby@conference.example.org` ->
 * `lobby`), so one room has exactly one id. A user's id is their occupant nick, as is (nicks
 * are case-sensitive in XMPP). All functions here are pure.
 */

/** Characters a JID local part may not hold (RFC 7622), and whitespace and controls. */
const FORBIDDEN_LOCAL = /["&'/:<>@\s\p{Cc}]/u;
const CONTROL = /\p{Cc}/u;
/** JID parts are at most 1023 bytes each. */
const MAX_PART_BYTES = 1023;

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/**
 * The canonical room id for a MUC local part (`Lobby` -> `lobby`), or null when it cannot be
 * a JID local part (empty, too long, or holding `"&'/:<>@`, whitespace or control characters).
 */
export function normalizeRoomId(local: string): string | null {
  const id = local.normalize("NFKC").toLowerCase();
  if (id === "" || utf8Bytes(id) > MAX_PART_BYTES || FORBIDDEN_LOCAL.test(id)) return null;
  return id;
}

/** True if `id` is a room id in its canonical spelling. */
export function isValidRoomId(id: string): boolean {
  return normalizeRoomId(id) === id;
}

/** True if `nick` can be an occupant nick (a JID resource): non-empty, no controls, not padded. */
export function isValidNick(nick: string): boolean {
  return (
    nick !== "" &&
    nick.trim() === nick &&
    utf8Bytes(nick) <= MAX_PART_BYTES &&
    !CONTROL.test(nick) &&
    nick.normalize("NFKC") === nick
  );
}

/** True for a plausible domain name (`conference.example.org`, `localhost`) or an IPv4 address. */
export function isValidDomain(domain: string): boolean {
  return (
    utf8Bytes(domain) <= 253 &&
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(domain)
  );
}

/** The bare JID of a room (`lobby` -> `lobby@conference.example.org`). */
export function roomJid(id: string, mucDomain: string): string {
  return `${id}@${mucDomain}`;
}

/** Splits `local@domain/resource` (any part but the domain may be missing). */
export function splitJid(address: string): { local: string; domain: string; resource: string } {
  const slash = address.indexOf("/");
  const bare = slash < 0 ? address : address.slice(0, slash);
  const resource = slash < 0 ? "" : address.slice(slash + 1);
  const at = bare.indexOf("@");
  return {
    local: at < 0 ? "" : bare.slice(0, at),
    domain: (at < 0 ? bare : bare.slice(at + 1)).toLowerCase(),
    resource,
  };
}
