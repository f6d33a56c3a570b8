/**
 * How Matrix messages read on XMPP. The bridge speaks in every room as one occupant, so each
 * message carries its Matrix sender's name: `<Alice> hello`, and an emote is `/me Alice waves`
 * (XMPP clients render `/me` as an action of the bridge's occupant). Pure.
 */
import type { MatrixEdit, MatrixMessage } from "matrix-bridgekit";

const MEDIA_TYPES: Record<string, string> = {
  "m.image": "an image",
  "m.file": "a file",
  "m.audio": "an audio file",
  "m.video": "a video",
};
/** Longest sender name shown; longer names are cut. */
const MAX_NAME_CHARS = 64;

/** A Matrix display name made fit for one line: controls and line breaks become spaces, cut to 64 characters. */
export function safeName(displayName: string): string {
  const flat = displayName
    .replace(/\p{Cc}+/gu, " ")
    .replace(/\s+/g, " ")
    .trim();
  const chars = [...(flat || "unknown")];
  return chars.length > MAX_NAME_CHARS ? `${chars.slice(0, MAX_NAME_CHARS - 1).join("")}…` : chars.join("");
}

/** Text without characters XML 1.0 cannot carry (controls other than tab and line breaks). */
export function xmlSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "");
}

/**
 * The XMPP body of a Matrix message, sent by the bridge's occupant. A file is sent as the link
 * `link` gives for its mxc:// URL and name (the adapter passes ctx.mediaLink); without it, the
 * mxc:// URL.
 */
export function formatMessage(
  message: Pick<MatrixMessage, "msgtype" | "body" | "mediaUrl">,
  displayName: string,
  link?: (mxcUrl: string, fileName: string) => string,
): string {
  const name = safeName(displayName);
  const body = xmlSafe(message.body);
  if (message.msgtype === "m.emote") return `/me ${name} ${body}`;
  const media = MEDIA_TYPES[message.msgtype];
  if (media !== undefined) {
    const url = message.mediaUrl ? ` ${link ? link(message.mediaUrl, message.body) : message.mediaUrl}` : "";
    return `<${name}> sent ${media}: ${body}${url}`;
  }
  return `<${name}> ${body}`;
}

/**
 * The XMPP body of a Matrix edit. With the edited message's remote id it is sent as an XEP-0308
 * correction and reads like the original; without it, it is a new message `<Alice> * new text`.
 */
export function formatEdit(
  edit: Pick<MatrixEdit, "msgtype" | "body">,
  displayName: string,
  asCorrection: boolean,
): string {
  if (asCorrection) return formatMessage(edit, displayName);
  if (edit.msgtype === "m.emote") return `/me ${safeName(displayName)} * ${xmlSafe(edit.body)}`;
  return `<${safeName(displayName)}> * ${xmlSafe(edit.body)}`;
}
