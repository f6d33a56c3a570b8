/**
 * How Matrix messages look on IRC in relay mode: the bridge's bot speaks for everyone, so
 * each line carries the Matrix sender's name. Pure functions: no I/O.
 *
 *   m.text / other   PRIVMSG #chan :<Alice> hello
 *   m.emote          PRIVMSG #chan :\x01ACTION Alice waves\x01   (clients show "* bot Alice waves")
 *   m.notice         NOTICE #chan :<Alice> the build is green
 *   media            PRIVMSG #chan :<Alice> cat.png https://matrix.example.org/_matrix/media/...
 *   edit             PRIVMSG #chan :<Alice> * corrected text
 *
 * A login's own connection (ownMessage, ownEdit) speaks as the user: the same lines without
 * the name (`PRIVMSG #chan :hello`, a real `/me`, `* corrected text`).
 */
import { splitMessage, utf8Length } from "./split-lines.js";

/** IRC's limit for one line, CRLF included. */
export const IRC_LINE_BYTES = 512;
/** The longest host name a server may show in our prefix (`nick!user@host`). */
const MAX_HOST_BYTES = 63;

export type OutgoingKind = "privmsg" | "notice" | "action";

/** A message to relay: what kind of IRC line, the per-line prefix and the text. */
export interface Outgoing {
  kind: OutgoingKind;
  /** Put before every line, e.g. `<Alice> ` or `Alice `. */
  prefix: string;
  text: string;
}

/** A Matrix display name made safe for one IRC line: no control characters, at most 64 characters. */
export function ircSafeName(displayName: string): string {
  // eslint-disable-next-line no-control-regex -- removing control characters is the point
  const clean = displayName.replace(/[\x00-\x1f\x7f]+/g, " ").trim();
  const chars = [...(clean === "" ? "matrix-user" : clean)];
  return chars.length > 64 ? chars.slice(0, 64).join("") + "…" : chars.join("");
}

/**
 * The IRC form of a Matrix message from `displayName`. A file is sent as the link `link` gives
 * for its mxc:// URL and name (the adapter passes ctx.mediaLink); without it, the mxc:// URL.
 */
export function formatMessage(
  msg: { msgtype: string; body: string; mediaUrl?: string },
  displayName: string,
  link?: (mxcUrl: string, fileName: string) => string,
): Outgoing {
  const name = ircSafeName(displayName);
  if (msg.msgtype === "m.emote") return { kind: "action", prefix: `${name} `, text: msg.body };
  if (msg.msgtype === "m.notice") return { kind: "notice", prefix: `<${name}> `, text: msg.body };
  if (msg.mediaUrl !== undefined) {
    const url = link ? link(msg.mediaUrl, msg.body) : msg.mediaUrl;
    const body = msg.body.trim();
    return { kind: "privmsg", prefix: `<${name}> `, text: body === "" ? url : `${body} ${url}` };
  }
  return { kind: "privmsg", prefix: `<${name}> `, text: msg.body };
}

/** A Matrix message sent by the user's own IRC connection: as formatMessage, without the name. */
export function ownMessage(
  msg: { msgtype: string; body: string; mediaUrl?: string },
  link?: (mxcUrl: string, fileName: string) => string,
): Outgoing {
  return { ...formatMessage(msg, "", link), prefix: "" };
}

/** A Matrix edit sent by the user's own IRC connection: `* corrected text`. */
export function ownEdit(edit: { body: string }): Outgoing {
  return { kind: "privmsg", prefix: "* ", text: edit.body };
}

/** The IRC form of a Matrix edit: a new line marked as a correction. */
export function formatEdit(edit: { body: string }, displayName: string): Outgoing {
  return { kind: "privmsg", prefix: `<${ircSafeName(displayName)}> * `, text: edit.body };
}

/**
 * The raw IRC lines (without CRLF) that carry `out` to `channel`, each fitting in 512 bytes
 * once the server adds our prefix `:nick!user@host ` (the host is assumed as long as allowed).
 */
export function toIrcLines(
  out: Outgoing,
  channel: string,
  self: { nick: string; username: string },
): string[] {
  const command = out.kind === "notice" ? "NOTICE" : "PRIVMSG";
  const head = `${command} ${channel} :`;
  const [open, close] = out.kind === "action" ? ["\x01ACTION ", "\x01"] : ["", ""];
  // ":" nick "!" "~" user "@" host " "
  const sourceBytes = 1 + utf8Length(self.nick) + 2 + utf8Length(self.username) + 1 + MAX_HOST_BYTES + 1;
  const budget =
    IRC_LINE_BYTES - 2 - sourceBytes - utf8Length(head) - utf8Length(open + close) - utf8Length(out.prefix);
  if (budget < 16)
    throw new RangeError(`channel name or sender name too long to relay (${budget} bytes left)`);
  return splitMessage(out.text, budget).map((piece) => `${head}${open}${out.prefix}${piece}${close}`);
}
