/**
 * The IRC adapter's configuration (`adapter.config` in the bridge's config file), and its
 * validation. Every problem is reported at once, naming the key.
 */
import { AdapterConfigReader, describeValue } from "matrix-bridgekit";
import { isValidChannel, isValidNick } from "./irc-ids.js";

/** `adapter.config` as written in the config file. */
export interface IrcConfig {
  /** The IRC server's host name or address. Required. */
  server: string;
  /** Default 6667 (6697 is usual with tls). */
  port?: number;
  /** The relay bot's nick. Required. */
  nick: string;
  /** Connect with TLS. Default false. */
  tls?: boolean;
  /** Channels to join at start and always relay (their portals are made at start). */
  channels?: string[];
  /** The bot's real name (WHOIS). Default "matrix-bridgekit IRC bridge". */
  realname?: string;
  /** The IRC username (ident). Default the nick, cut to 10 characters. */
  username?: string;
  /** The server password (PASS). */
  password?: string;
  /** Send a NOTICE to the channel when a Matrix user joins or leaves a portal. Default false. */
  announceMembership?: boolean;
  /** At most this many lines are sent to IRC per `floodIntervalMs` (flood protection). Default 5. */
  floodLines?: number;
  /** Default 2000 ms. */
  floodIntervalMs?: number;
  /** First reconnect delay; it doubles per failed attempt. Default 1000 ms. */
  reconnectDelayMs?: number;
  /** Longest reconnect delay. Default 60000 ms. */
  reconnectMaxDelayMs?: number;
  /** How long start() and a join or WHOIS wait for the server. Default 15000 ms. */
  timeoutMs?: number;
  /** At most this many channels are joined (fixed plus on demand). Default 200. */
  maxChannels?: number;
  /**
   * The bot relays messages of Matrix users without a login (`<Alice> hi`). Default true; with
   * false, such users are told to log in (`login`) and nothing is relayed for them.
   */
  relay?: boolean;
  /** A login connection's ident (USER): `{localpart}`, `{nick}`, `{userId}` are filled in. Default "{localpart}". */
  userIdent?: string;
  /** A login connection's real name (WHOIS), same placeholders. Default "{userId} via Matrix". */
  userRealname?: string;
}

/** The config with every default applied. */
export type ResolvedIrcConfig = Required<Omit<IrcConfig, "password">> & Pick<IrcConfig, "password">;

const KNOWN_KEYS = new Set([
  "server",
  "port",
  "nick",
  "tls",
  "channels",
  "realname",
  "username",
  "password",
  "announceMembership",
  "floodLines",
  "floodIntervalMs",
  "reconnectDelayMs",
  "reconnectMaxDelayMs",
  "timeoutMs",
  "maxChannels",
  "relay",
  "userIdent",
  "userRealname",
]);

/**
 * Validates `adapter.config` and applies defaults. Throws a ValidationError (source
 * "adapter.config") listing every bad key with the value found; the password is never shown.
 */
export function resolveIrcConfig(raw: unknown): ResolvedIrcConfig {
  const r = new AdapterConfigReader(raw, {
    known: [...KNOWN_KEYS],
    expect: "a mapping with at least server and nick",
  });
  const bad = (path: string, message: string): void => r.problem(path, message);
  const c = r.values;
  const str = (key: string, required: boolean, secret = false) => r.string(key, { required, secret });
  const bool = (key: string, fallback: boolean) => r.boolean(key, fallback);
  const int = (key: string, fallback: number, min: number, max: number) => r.integer(key, fallback, min, max);

  const server = str("server", true) ?? "";
  if (server !== "" && /[\s/]/.test(server))
    bad("server", `must be a host name or address, got ${describeValue(server)}`);
  const nick = str("nick", true) ?? "";
  if (nick !== "" && !isValidNick(nick)) {
    bad(
      "nick",
      `is not a valid IRC nick (letters, digits, []\\\`_^{|}- ; not starting with a digit or -), got ${describeValue(nick)}`,
    );
  }
  const tls = bool("tls", false);
  const port = int("port", tls ? 6697 : 6667, 1, 65535);

  const channels: string[] = [];
  if (c.channels !== undefined) {
    if (!Array.isArray(c.channels))
      bad("channels", `must be a list of channel names, got ${describeValue(c.channels)}`);
    else {
      c.channels.forEach((ch: unknown, i) => {
        if (typeof ch !== "string" || !isValidChannel(ch)) {
          bad(
            `channels[${i}]`,
            `must be a channel name starting with # (no spaces or commas), got ${describeValue(ch)}`,
          );
        } else channels.push(ch);
      });
    }
  }
  const realname = str("realname", false) ?? "matrix-bridgekit IRC bridge";
  const username = str("username", false) ?? nick.slice(0, 10);
  if (c.username !== undefined && /[\s@]/.test(username))
    bad("username", `must not contain spaces or @, got ${describeValue(username)}`);
  const password = str("password", false, true);
  const announceMembership = bool("announceMembership", false);
  const floodLines = int("floodLines", 5, 1, 1000);
  const floodIntervalMs = int("floodIntervalMs", 2000, 0, 60_000);
  const reconnectDelayMs = int("reconnectDelayMs", 1000, 10, 600_000);
  const reconnectMaxDelayMs = int("reconnectMaxDelayMs", 60_000, 10, 3_600_000);
  if (reconnectMaxDelayMs < reconnectDelayMs) {
    bad(
      "reconnectMaxDelayMs",
      `must not be below reconnectDelayMs (${reconnectDelayMs}), got ${reconnectMaxDelayMs}`,
    );
  }
  const timeoutMs = int("timeoutMs", 15_000, 100, 600_000);
  const maxChannels = int("maxChannels", 200, 1, 10_000);
  if (channels.length > maxChannels)
    bad("channels", `lists ${channels.length} channels, more than maxChannels (${maxChannels})`);

  const relay = bool("relay", true);
  const userIdent = str("userIdent", false) ?? "{localpart}";
  const userRealname = str("userRealname", false) ?? "{userId} via Matrix";
  for (const [key, value] of [
    ["userIdent", userIdent],
    ["userRealname", userRealname],
  ] as const) {
    const unknown = /\{(?!(?:nick|localpart|userId)\})[^}]*\}/.exec(value);
    if (unknown)
      bad(key, `knows {nick}, {localpart} and {userId}, not ${unknown[0]}; got ${describeValue(value)}`);
  }

  r.done();
  const resolved: ResolvedIrcConfig = {
    server,
    port,
    nick,
    tls,
    channels,
    realname,
    username,
    announceMembership,
    floodLines,
    floodIntervalMs,
    reconnectDelayMs,
    reconnectMaxDelayMs,
    timeoutMs,
    maxChannels,
    relay,
    userIdent,
    userRealname,
  };
  if (password !== undefined) resolved.password = password;
  return resolved;
}
