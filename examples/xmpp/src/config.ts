/**
 * The XMPP adapter's configuration (`adapter.config` in the bridge's config file), and its
 * validation. Every problem is reported at once, naming the key; the password is never shown.
 */
import { AdapterConfigReader, describeValue } from "matrix-bridgekit";
import { isValidDomain, isValidNick, normalizeRoomId } from "./xmpp-ids.js";

/** `adapter.config` as written in the config file. */
export interface XmppConfig {
  /**
   * Where to connect: `xmpp://host[:port]` (port 5222; STARTTLS when the server offers it) or
   * `xmpps://host[:port]` (direct TLS, port 5223). Required.
   */
  service: string;
  /** The XMPP domain of the bridge's account, e.g. `example.org`. Required. */
  domain: string;
  /** The local part of the bridge's account (`bridge` for bridge@example.org). Required. */
  username: string;
  /** The account's password. Required. */
  password: string;
  /** The multi-user chat service, e.g. `conference.example.org`. Required. */
  mucDomain: string;
  /** The bridge's occupant nick in every room. Required. */
  nick: string;
  /** Rooms joined at start and always bridged (local parts, or `room@mucDomain`); their portals are made at start. */
  rooms?: string[];
  /** The XMPP resource of the bridge's session. Default "bridgekit". */
  resource?: string;
  /**
   * Allow logging in over a connection without TLS (the server offered no STARTTLS). Default:
   * true only when `service` is a loopback address (127.0.0.0/8, ::1, localhost), false otherwise.
   */
  allowInsecure?: boolean;
  /** First reconnect delay; it doubles per failed attempt. Default 1000 ms. */
  reconnectDelayMs?: number;
  /** Longest reconnect delay. Default 60000 ms. */
  reconnectMaxDelayMs?: number;
  /** How long start(), a room join or a query may take. Default 15000 ms. */
  timeoutMs?: number;
  /** At most this many rooms are joined (fixed plus on demand). Default 200. */
  maxRooms?: number;
}

/** The config with every default applied; `rooms` holds normalised room ids. */
export type ResolvedXmppConfig = Required<XmppConfig>;

const KNOWN_KEYS = new Set([
  "service",
  "domain",
  "username",
  "password",
  "mucDomain",
  "nick",
  "rooms",
  "resource",
  "allowInsecure",
  "reconnectDelayMs",
  "reconnectMaxDelayMs",
  "timeoutMs",
  "maxRooms",
]);

/** True for 127.0.0.0/8, ::1 and localhost: connections that never leave the machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Validates `adapter.config` and applies defaults. Throws a ValidationError (source
 * "adapter.config") listing every bad key with the value found; the password is never shown.
 */
export function resolveXmppConfig(raw: unknown): ResolvedXmppConfig {
  const r = new AdapterConfigReader(raw, {
    known: [...KNOWN_KEYS],
    expect: "a mapping with service, domain, username, password, mucDomain and nick",
  });
  const bad = (path: string, message: string): void => r.problem(path, message);
  const c = r.values;
  const str = (key: string, required: boolean, secret = false) => r.string(key, { required, secret });
  const bool = (key: string) => r.boolean(key);
  const int = (key: string, fallback: number, min: number, max: number) => r.integer(key, fallback, min, max);

  const service = str("service", true) ?? "";
  let serviceHost = "";
  if (service !== "") {
    let url: URL | null;
    try {
      url = new URL(service);
    } catch {
      url = null;
    }
    if (
      url === null ||
      (url.protocol !== "xmpp:" && url.protocol !== "xmpps:") ||
      url.hostname === "" ||
      (url.pathname !== "" && url.pathname !== "/") ||
      url.username !== "" ||
      url.password !== ""
    ) {
      bad("service", `must be xmpp://host[:port] or xmpps://host[:port], got ${describeValue(service)}`);
    } else serviceHost = url.hostname;
  }
  const domain = (str("domain", true) ?? "").toLowerCase();
  if (domain !== "" && !isValidDomain(domain))
    bad("domain", `is not a domain name, got ${describeValue(domain)}`);
  const username = str("username", true) ?? "";
  if (username !== "" && /[\s"&'/:<>@]/.test(username))
    bad(
      "username",
      `must be the local part of the account (no spaces or "&'/:<>@), got ${describeValue(username)}`,
    );
  const password = str("password", true, true) ?? "";
  const mucDomain = (str("mucDomain", true) ?? "").toLowerCase();
  if (mucDomain !== "" && !isValidDomain(mucDomain))
    bad("mucDomain", `is not a domain name, got ${describeValue(mucDomain)}`);
  const nick = str("nick", true) ?? "";
  if (nick !== "" && !isValidNick(nick))
    bad("nick", `is not a valid occupant nick, got ${describeValue(nick)}`);
  const resource = str("resource", false) ?? "bridgekit";

  const rooms: string[] = [];
  if (c.rooms !== undefined) {
    if (!Array.isArray(c.rooms)) bad("rooms", `must be a list of room names, got ${describeValue(c.rooms)}`);
    else {
      c.rooms.forEach((room: unknown, i) => {
        if (typeof room !== "string") {
          bad(
            `rooms[${i}]`,
            `must be a room name (room or room@${mucDomain || "mucDomain"}), got ${describeValue(room)}`,
          );
          return;
        }
        const at = room.lastIndexOf("@");
        const local = at < 0 ? room : room.slice(0, at);
        if (at >= 0 && room.slice(at + 1).toLowerCase() !== mucDomain) {
          bad(
            `rooms[${i}]`,
            `is on another service than mucDomain (${mucDomain}), got ${describeValue(room)}`,
          );
          return;
        }
        const id = normalizeRoomId(local);
        if (id === null) {
          bad(`rooms[${i}]`, `is not a valid room name (no spaces or "&'/:<>@), got ${describeValue(room)}`);
        } else if (!rooms.includes(id)) rooms.push(id);
      });
    }
  }

  const allowInsecure = bool("allowInsecure") ?? isLoopbackHost(serviceHost);
  const reconnectDelayMs = int("reconnectDelayMs", 1000, 10, 600_000);
  const reconnectMaxDelayMs = int("reconnectMaxDelayMs", 60_000, 10, 3_600_000);
  if (reconnectMaxDelayMs < reconnectDelayMs) {
    bad(
      "reconnectMaxDelayMs",
      `must not be below reconnectDelayMs (${reconnectDelayMs}), got ${reconnectMaxDelayMs}`,
    );
  }
  const timeoutMs = int("timeoutMs", 15_000, 100, 600_000);
  const maxRooms = int("maxRooms", 200, 1, 10_000);
  if (rooms.length > maxRooms) bad("rooms", `lists ${rooms.length} rooms, more than maxRooms (${maxRooms})`);

  r.done();
  const resolved: ResolvedXmppConfig = {
    service,
    domain,
    username,
    password,
    mucDomain,
    nick,
    rooms,
    resource,
    allowInsecure,
    reconnectDelayMs,
    reconnectMaxDelayMs,
    timeoutMs,
    maxRooms,
  };
  return resolved;
}
