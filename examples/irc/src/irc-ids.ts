/**
 * IRC names and the remote ids the bridge uses for them. IRC compares nicks and channel
 * names case-insensitively, so ids are lowercased with the rfc1459 casemapping (A-Z, and
 * `[]\~` become `{}|^`): `Alice` and `alice` are one ghost, `#Chat` and `#chat` one portal.
 * The original spelling is kept as the ghost's display name and the portal's name.
 *
 * Pure functions: no I/O.
 */

/** The longest nick this bridge accepts (servers announce their own NICKLEN; most allow 30 or less). */
export const MAX_NICK_LENGTH = 64;
/** The longest channel name, including the leading `#` (the usual CHANNELLEN). */
export const MAX_CHANNEL_LENGTH = 50;

/** Lowercases with IRC's rfc1459 casemapping. */
export function ircLower(text: string): string {
  let out = "";
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (code >= 0x41 && code <= 0x5a) out += String.fromCharCode(code + 32);
    else if (ch === "[") out += "{";
    else if (ch === "]") out += "}";
    else if (ch === "\\") out += "|";
    else if (ch === "~") out += "^";
    else out += ch;
  }
  return out;
}

/** True if `a` and `b` name the same nick or channel. */
export function ircEquals(a: string, b: string): boolean {
  return ircLower(a) === ircLower(b);
}

const NICK = /^[A-Za-z[\]\\`_^{|}][A-Za-z0-9[\]\\`_^{|}-]*$/;

/** True if `nick` is a syntactically valid IRC nick (RFC 2812 letters, digits and specials). */
export function isValidNick(nick: string): boolean {
  return nick.length > 0 && nick.length <= MAX_NICK_LENGTH && NICK.test(nick);
}

/**
 * True if `name` is a valid `#` channel name: `#` then 1 or more characters, none of them
 * space, comma, BEL, NUL, CR or LF, at most MAX_CHANNEL_LENGTH in all.
 */
export function isValidChannel(name: string): boolean {
  return (
    // eslint-disable-next-line no-control-regex -- BEL and NUL are exactly what is forbidden
    name.length > 1 && name.length <= MAX_CHANNEL_LENGTH && name.startsWith("#") && !/[\s,\x07\0]/.test(name)
  );
}

/** The remote user id of a nick: `Alice` -> `alice`. */
export function nickToId(nick: string): string {
  return ircLower(nick);
}

/** The remote room id of a channel: the name without its `#`, lowercased (`#Chat` -> `chat`). */
export function channelToId(channel: string): string {
  return ircLower(channel.startsWith("#") ? channel.slice(1) : channel);
}

/** The channel of a remote room id: `chat` -> `#chat`. */
export function idToChannel(id: string): string {
  return `#${id}`;
}

/** True if `id` is a room id this bridge could have made (a valid channel once `#` is added, lowercased). */
export function isValidRoomId(id: string): boolean {
  return isValidChannel(idToChannel(id)) && ircLower(id) === id;
}

/**
 * The remote room id of a login's private chat (query) with a nick: `pm,bob`. The comma
 * keeps it apart from every channel id (a channel name has no comma).
 */
export function queryToId(nick: string): string {
  return `pm,${ircLower(nick)}`;
}

/** The nick of a query's room id (`pm,bob` -> `bob`), or null when it is not one. */
export function idToQuery(id: string): string | null {
  const nick = id.startsWith("pm,") ? id.slice(3) : "";
  return isValidUserId(nick) ? nick : null;
}

/**
 * Fills a login's ident or real name template: `{nick}`, `{localpart}` and `{userId}` (of the
 * Matrix user). An ident keeps only letters, digits, `_` and `-`, at most 10 characters.
 */
export function fillUserTemplate(
  template: string,
  v: { nick: string; userId: string },
  kind: "ident" | "realname",
): string {
  const localpart = v.userId.replace(/^@/, "").split(":")[0] ?? "";
  const filled = template.replace(/\{(nick|localpart|userId)\}/g, (_, k: string) =>
    k === "nick" ? v.nick : k === "localpart" ? localpart : v.userId,
  );
  if (kind === "realname") return filled.replace(/[\r\n\0]+/g, " ").trim() || v.nick;
  return filled.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 10) || "matrix";
}

/** True if `id` is a user id this bridge could have made (a valid nick, lowercased). */
export function isValidUserId(id: string): boolean {
  return isValidNick(id) && ircLower(id) === id;
}

/** Removes mIRC formatting codes (bold, colour, italics, underline, reverse, reset, monospace). */
export function stripFormatting(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex -- the formatting codes are control characters
    /\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g,
    "",
  );
}
