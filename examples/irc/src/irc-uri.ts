/**
 * Third-party URIs (`irc://server/nick`, `irc://server/%23channel`) to remote ids, for the
 * homeserver's `/thirdparty` lookups. Pure functions: no I/O.
 */
import { channelToId, isValidChannel, isValidNick, nickToId } from "./irc-ids.js";

/** True if `uri` points at the configured server (irc: or ircs:, same host, same port if given). */
function isOurServer(uri: URL, server: { host: string; port: number }): boolean {
  if (uri.protocol !== "irc:" && uri.protocol !== "ircs:") return false;
  if (uri.hostname.toLowerCase() !== server.host.toLowerCase()) return false;
  return uri.port === "" || Number(uri.port) === server.port;
}

/** The target of an IRC URL (`/alice,isnick` -> `alice`), decoded; `#chan` kept with its `#`. */
function target(uri: URL): string | null {
  let path: string;
  try {
    path = decodeURIComponent(uri.pathname.replace(/^\//, ""));
  } catch {
    return null;
  }
  // `irc://server/#chan`: the URL parser puts the channel in the fragment.
  if (path === "" && uri.hash.length > 1) path = uri.hash;
  const comma = path.indexOf(",");
  return comma >= 0 ? path.slice(0, comma) : path;
}

/** `irc://{server}/{nick}` -> the nick's remote id; null for other servers, channels or bad nicks. */
export function userFromUri(uri: URL, server: { host: string; port: number }): string | null {
  if (!isOurServer(uri, server)) return null;
  const nick = target(uri);
  return nick !== null && isValidNick(nick) ? nickToId(nick) : null;
}

/** `irc://{server}/%23{channel}` or `irc://{server}/#{channel}` -> the channel's remote id, else null. */
export function roomFromUri(uri: URL, server: { host: string; port: number }): string | null {
  if (!isOurServer(uri, server)) return null;
  const channel = target(uri);
  return channel !== null && isValidChannel(channel) ? channelToId(channel) : null;
}
