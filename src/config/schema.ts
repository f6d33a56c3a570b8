/**
 * The bridge config file, described once. Every key's type, default, allowed values and
 * doc line live here; validation (validate.ts), env overrides (env.ts), the docs table
 * (docs-table.ts) and the typed result (types.ts, checked by a test) all follow from it,
 * so they cannot drift apart.
 */
import { IdTemplate } from "../registration/localpart.js";

/** The value types a key can have. `mapping` is any object, handed on as written. */
export type KeyType = "string" | "integer" | "boolean" | "mapping";

/**
 * Extra rules for a string key. Each checks a value that is already a string and returns
 * what is wrong with it ("must be …"), or null if it is fine. Pure: no I/O.
 */
export interface Format {
  /** How the docs table names the format, e.g. "http(s) URL". */
  label: string;
  check(value: string, doc: ConfigDocView): string | null;
}

/** What a format may look at besides its own value (e.g. a template needs the domain). */
export interface ConfigDocView {
  /** The raw value at a dotted path of the document being validated. */
  get(path: string): unknown;
}

/** One key of the config file. */
export interface KeySpec {
  readonly kind: "key";
  readonly type: KeyType;
  /** One line for the docs table and config.example.yaml. */
  readonly doc: string;
  /** The value when the key is absent. A key with neither default nor `required` may stay absent. */
  readonly default?: unknown;
  readonly required?: boolean;
  /** The only values a string key may take. */
  readonly values?: readonly string[];
  /** Inclusive bounds of an integer key. */
  readonly min?: number;
  readonly max?: number;
  readonly format?: Format;
  /** False for keys that cannot be set from the environment. Default true. */
  readonly env?: boolean;
  /** A secret: errors describe its value without showing it. */
  readonly secret?: boolean;
}

/** A mapping of keys, e.g. `homeserver:`. */
export interface SectionSpec {
  readonly kind: "section";
  readonly doc: string;
  readonly keys: Readonly<Record<string, Node>>;
}

export type Node = KeySpec | SectionSpec;

function key(spec: Omit<KeySpec, "kind">): KeySpec {
  return { kind: "key", ...spec };
}

function section(doc: string, keys: Record<string, Node>): SectionSpec {
  return { kind: "section", doc, keys };
}

// ---------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$/;

export const httpUrl: Format = {
  label: "http(s) URL",
  check(value) {
    if (!URL.canParse(value)) return "must be an http(s) URL";
    const url = new URL(value);
    if (url.protocol !== "http:" && url.protocol !== "https:") return "must be an http(s) URL";
    if (url.username !== "" || url.password !== "") return "must not contain credentials";
    if (url.search !== "" || url.hash !== "") return "must not have a query string or fragment";
    return null;
  },
};

/** A Matrix server name: a DNS name, IPv4 address or [IPv6] literal, with an optional :port. */
export const serverName: Format = {
  label: "server name",
  check(value) {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(value);
    const host = m?.[1];
    const ok =
      host !== undefined &&
      (host.startsWith("[") ? IPV6.test(host.slice(1, -1)) : IPV4.test(host) || HOSTNAME.test(host)) &&
      (m?.[2] === undefined || Number(m[2]) <= 65535);
    return ok ? null : "must be a server name such as example.org or localhost:8448";
  },
};

/** An address to listen on: a host name, an IPv4 or an IPv6 address (unbracketed, e.g. `::`). */
export const listenHost: Format = {
  label: "host or IP",
  check(value) {
    return IPV4.test(value) || IPV6.test(value) || HOSTNAME.test(value)
      ? null
      : "must be a host name or IP address such as 127.0.0.1 or ::";
  },
};

export const STORE_SCHEMES = ["memory", "sqlite", "postgres", "postgresql", "redis", "rediss"] as const;

export const storeUrl: Format = {
  label: "store URL",
  check(value) {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
    if (scheme === undefined || !(STORE_SCHEMES as readonly string[]).includes(scheme)) {
      return "must be a store URL: memory://, sqlite://relative/path.db, sqlite:///absolute/path.db, postgres://… or redis://…";
    }
    if (scheme === "sqlite") {
      const rest = value.slice("sqlite://".length).split("?")[0]!;
      return rest === "" || rest === "/" ? "must name a database file, e.g. sqlite://data/bridge.db" : null;
    }
    if (scheme === "memory") return null;
    if (!URL.canParse(value) || new URL(value).hostname === "")
      return `must be a ${scheme}:// URL with a host`;
    return null;
  },
};

/** A localpart template such as `irc_{id}`; checked with the registration's IdTemplate. */
export const idTemplate: Format = {
  label: "template with {id}",
  check(value, doc) {
    const domain = doc.get("homeserver.domain");
    const usable = typeof domain === "string" && serverName.check(domain, doc) === null;
    try {
      new IdTemplate(value, usable ? domain : "example.org");
      return null;
    } catch (err) {
      return (err as Error).message.replace(/^template "[^"]*" /, "").replace(/, got "[^"]*"$/, "");
    }
  },
};

/** A non-empty string naming a file or folder (made absolute against the config file's folder). */
export const filePath: Format = {
  label: "path",
  check(value) {
    return value.trim() === "" ? "must not be empty" : value.includes("\0") ? "must not contain NUL" : null;
  },
};

export const moduleSpec: Format = {
  label: "package or path",
  check(value) {
    return value.trim() === "" ? "must name a package or a file" : null;
  },
};

export const nonEmpty: Format = {
  label: "text",
  check(value) {
    return value.trim() === "" ? "must not be empty" : null;
  },
};

/** A secret: long enough to resist guessing; never printed back in an error. */
export const secretKey: Format = {
  label: "secret",
  check(value) {
    return value.trim().length < 16 ? "must be at least 16 characters" : null;
  },
};

/** A relay message template: must place the message body. */
export const relayTemplate: Format = {
  label: "template with {body}",
  check(value) {
    if (!value.includes("{body}")) return "must contain {body}";
    const unknown = [...value.matchAll(/\{([^}]*)\}/g)]
      .map((m) => m[1])
      .find((n) => !["name", "userId", "body"].includes(n!));
    return unknown === undefined
      ? null
      : `has an unknown placeholder {${unknown}} (known: {name}, {userId}, {body})`;
  },
};

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

// ---------------------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------------------

export const CONFIG_SCHEMA: SectionSpec = section("the bridge config file", {
  homeserver: section("the homeserver the bridge serves", {
    url: key({
      type: "string",
      required: true,
      format: httpUrl,
      doc: "Client-server API base URL the bridge calls, e.g. http://127.0.0.1:8008",
    }),
    domain: key({
      type: "string",
      required: true,
      format: serverName,
      doc: "The homeserver's server name (the part after ':' in user ids), e.g. example.org",
    }),
  }),
  appservice: section("the HTTP server the homeserver pushes to", {
    registration: key({
      type: "string",
      default: "registration.yaml",
      format: filePath,
      doc: "Registration file, relative to the config file's folder",
    }),
    host: key({ type: "string", default: "127.0.0.1", format: listenHost, doc: "Address to listen on" }),
    port: key({
      type: "integer",
      default: 9000,
      min: 0,
      max: 65535,
      doc: "Port to listen on (0: any free port)",
    }),
    maxBodyBytes: key({
      type: "integer",
      default: 16 * 1024 * 1024,
      min: 1024,
      doc: "Largest request body accepted; larger ones get 413",
    }),
    handlerTimeoutMs: key({
      type: "integer",
      default: 30_000,
      min: 1,
      doc: "How long one adapter handler call may take before it counts as failed (it is then retried, like any failure)",
    }),
    roomConcurrency: key({
      type: "integer",
      default: 32,
      min: 1,
      doc: "Rooms whose events are handled in parallel (events of one room are always in order)",
    }),
  }),
  inbox: section("the durable inbox: each transaction is recorded, acknowledged, then handled", {
    transactions: key({
      type: "integer",
      default: 10_000,
      min: 100,
      doc: "Transactions remembered, so that the homeserver's replays are no-ops",
    }),
    maxPendingItems: key({
      type: "integer",
      default: 10_000,
      min: 1,
      doc: "Events recorded and not yet handled before new transactions are refused with 503 (the homeserver keeps them)",
    }),
    retry: section("how a failed event is retried while later events of its room wait", {
      firstDelayMs: key({
        type: "integer",
        default: 1_000,
        min: 0,
        doc: "Wait before the first retry; doubles each time",
      }),
      maxDelayMs: key({ type: "integer", default: 300_000, min: 0, doc: "Longest wait between two tries" }),
      maxAttempts: key({
        type: "integer",
        default: 10,
        min: 1,
        doc: "Tries in all for a RetryableError or a timeout, then the event is a dead letter",
      }),
      maxAgeMs: key({
        type: "integer",
        default: 3_600_000,
        min: 0,
        doc: "Give up on an event this long after its first try, whatever the count",
      }),
      unexpectedAttempts: key({
        type: "integer",
        default: 3,
        min: 1,
        doc: "Tries in all for an unexpected error (a bug: any error that is not a RetryableError)",
      }),
    }),
    maxDeadLetters: key({
      type: "integer",
      default: 10_000,
      min: 1,
      doc: "Dead letters kept (see bridgekit dead-letters); past it the oldest is dropped",
    }),
    deadLetterNotice: key({
      type: "boolean",
      default: true,
      doc: "Tell the sender, with a notice replying to their event, when it was not bridged",
    }),
  }),
  lease: section(
    "one writer per store: a second bridge process on the same store refuses to start, or waits as a standby",
    {
      standby: key({
        type: "boolean",
        default: false,
        doc: "Wait for the store's writer lease instead of refusing to start while another process holds it; take over when that one stops or dies",
      }),
      ttlMs: key({
        type: "integer",
        default: 5_000,
        min: 1_000,
        doc: "How long the lease lives unrenewed (renewed every third of it): a standby takes over within about this long after the active process dies",
      }),
    },
  ),
  store: key({
    type: "string",
    default: "sqlite://bridgekit.db",
    format: storeUrl,
    doc: "Where state is kept: memory://, sqlite://file (relative to the config file's folder), postgres://…, redis://…",
  }),
  bridge: section("how remote users and rooms appear on Matrix", {
    ghosts: key({
      type: "string",
      required: true,
      format: idTemplate,
      doc: "Ghost user localpart template, e.g. irc_{id} gives @irc_alice:domain",
    }),
    portals: key({
      type: "string",
      format: idTemplate,
      doc: "Portal alias localpart template, e.g. irc_{id} gives #irc_chan:domain; absent: no aliases",
    }),
    botDisplayName: key({
      type: "string",
      format: nonEmpty,
      doc: "Display name of the bridge bot; absent: unchanged",
    }),
    unsupportedNotice: key({
      type: "boolean",
      default: true,
      doc: "Tell Matrix users (m.notice) when the adapter cannot bridge what they did",
    }),
    spaces: key({
      type: "string",
      default: "off",
      values: ["off", "network", "login"],
      doc: "Matrix spaces holding the portals: network (one space of the shared portals, logins' users invited), login (one per login: its DMs and the portals its session uses, its user invited), or off",
    }),
  }),
  permissions: key({
    type: "mapping",
    doc: 'Who may use the bridge: a user id, a server name or "*" -> relay (is relayed), user (may log in), admin (may act for others); nobody else. Absent: {"*": relay, <homeserver.domain>: user}',
  }),
  commands: section("the bot's commands (management room: no prefix; elsewhere, the prefix)", {
    prefix: key({
      type: "string",
      format: nonEmpty,
      doc: "What starts a command outside the management room; absent: !<adapter name>",
    }),
  }),
  logins: section("users' own remote logins (adapters with the logins capability)", {
    encryptionKey: key({
      type: "string",
      format: secretKey,
      secret: true,
      doc: "Encrypts login data and double-puppet tokens at rest (AES-256-GCM; 16+ characters, e.g. from openssl rand -base64 32); absent: stored as written",
    }),
    connectConcurrency: key({
      type: "integer",
      default: 32,
      min: 1,
      doc: "Logins connected at once when the bridge starts",
    }),
    processTimeoutMs: key({
      type: "integer",
      default: 900_000,
      min: 1_000,
      doc: "A login process untouched this long is cancelled",
    }),
    waitTimeoutMs: key({
      type: "integer",
      default: 300_000,
      min: 1_000,
      doc: "How long a display_and_wait step (a QR code to scan) may wait for the remote side",
    }),
    relayFormat: key({
      type: "string",
      default: "<{name}> {body}",
      format: relayTemplate,
      doc: "How a relay login names the sender: {name} (display name), {userId}, {body}",
    }),
    relayEmoteFormat: key({
      type: "string",
      default: "* {name} {body}",
      format: relayTemplate,
      doc: "The same for emotes (/me)",
    }),
  }),
  provisioning: section("the provisioning HTTP API bridge managers speak, under /_matrix/provision", {
    sharedSecret: key({
      type: "string",
      format: secretKey,
      secret: true,
      doc: "Enables the API: callers send it as a Bearer token with ?user_id= (16+ characters); absent: the API is off",
    }),
  }),
  doublePuppet: section(
    "double puppeting: what a user sends from another remote client appears as themselves",
    {
      registration: key({
        type: "string",
        format: filePath,
        doc: "A second registration (url: null, a non-exclusive namespace of the real users) whose as_token may act as them; written by bridgekit generate-registration --double-puppet; absent: only tokens users give by command",
      }),
    },
  ),
  adapter: section("the remote network adapter", {
    module: key({
      type: "string",
      required: true,
      format: moduleSpec,
      doc: "Package name, or path to a .js/.ts file or a package folder (relative to the config file's folder)",
    }),
    config: key({
      type: "mapping",
      default: {},
      doc: "Handed to the adapter's factory as is (from the environment: JSON)",
    }),
  }),
  logging: section("log output (JSON lines on stdout)", {
    level: key({ type: "string", default: "info", values: LOG_LEVELS, doc: "Least severe level written" }),
  }),
  metrics: section("Prometheus metrics at /metrics", {
    enabled: key({ type: "boolean", default: false, doc: "Serve /metrics" }),
    host: key({
      type: "string",
      default: "127.0.0.1",
      format: listenHost,
      doc: "Address of the metrics listener (only with metrics.port)",
    }),
    port: key({
      type: "integer",
      min: 0,
      max: 65535,
      doc: "A separate port for /metrics; absent: /metrics is served on the appservice port",
    }),
  }),
  media: section("files between Matrix and the remote network, and the links the bridge serves to them", {
    spoolDir: key({
      type: "string",
      default: "media-spool",
      format: nonEmpty,
      doc: "Where attachments wait until they reached Matrix (relative to the config file's folder)",
    }),
    maxBytes: key({
      type: "integer",
      default: 104_857_600,
      min: 1,
      doc: "The largest file the bridge handles either way (to Matrix, and read with ctx.openMedia or ctx.downloadMedia), in bytes (default 100 MiB); larger ones are refused",
    }),
    publicUrl: key({
      type: "string",
      format: httpUrl,
      doc: "The base URL the bridge's appservice listener is reachable at from the remote network (e.g. behind a reverse proxy); links are <publicUrl>/_bridgekit/media/v1/...; absent: ctx.mediaLink throws",
    }),
    linkKey: key({
      type: "string",
      format: secretKey,
      secret: true,
      doc: "Signs the links (HMAC-SHA256; 16+ characters, e.g. from openssl rand -base64 32); required with media.publicUrl; changing it ends every link given out",
    }),
    linkTtlMs: key({
      type: "integer",
      default: 604_800_000,
      min: 1_000,
      doc: "How long a link works (default 7 days)",
    }),
  }),
  encryption: section(
    "end-to-bridge encryption (issue #19, in progress): the bot's own device decrypts encrypted rooms' events before the adapter sees them",
    {
      allow: key({
        type: "boolean",
        default: false,
        doc: "Bridge encrypted rooms: the bot gets a device (MSC4190), transactions feed its crypto (MSC2409, MSC3202) and m.room.encrypted events are decrypted before routing; needs pickleKey, and the registration's and the homeserver's opt-ins (bridgekit validate lists them)",
      }),
      default: key({
        type: "boolean",
        default: false,
        doc: "Create portals and DMs encrypted (needs allow; outbound encryption is not built yet: refused for now)",
      }),
      require: key({
        type: "boolean",
        default: false,
        doc: "Refuse to bridge unencrypted rooms (needs allow; not built yet: refused for now)",
      }),
      pickleKey: key({
        type: "string",
        format: secretKey,
        secret: true,
        doc: "Protects the stored crypto state (keys, sessions; scrypt -> the Rust store's key; 16+ characters, e.g. from openssl rand -base64 32); changing or losing it makes every encrypted room unreadable to the bridge",
      }),
      deviceName: key({
        type: "string",
        default: "bridgekit",
        format: nonEmpty,
        doc: "Display name of the bot's device",
      }),
      trust: key({
        type: "string",
        default: "untrusted",
        values: ["untrusted", "crossSignedOrLegacy", "crossSigned"],
        doc: "Whose messages are decrypted: any device (untrusted), devices cross-signed by their owner or older than cross-signing (crossSignedOrLegacy), or only cross-signed ones; others are refused and their sender told",
      }),
    },
  ),
  backfill: section("history: missed remote messages fetched (fetchHistory) and sent before live ones", {
    enabled: key({
      type: "boolean",
      default: true,
      doc: "Fetch history when a portal is made and when the adapter asks (ctx.backfill) after a gap; only with an adapter or session that has fetchHistory",
    }),
    maxOnCreate: key({
      type: "integer",
      default: 50,
      min: 0,
      doc: "Messages fetched for a portal with nothing bridged yet (the newest ones); 0: none",
    }),
    maxAfterGap: key({
      type: "integer",
      default: 500,
      min: 0,
      doc: "Messages fetched after the newest bridged one when a gap is filled (the newest ones, when more were missed); 0: none",
    }),
    maxAgeMs: key({
      type: "integer",
      default: 0,
      min: 0,
      doc: "Messages older than this (by their remote time) are not backfilled; 0: no limit",
    }),
    concurrency: key({
      type: "integer",
      default: 4,
      min: 1,
      doc: "Rooms whose history is fetched at once",
    }),
    timeoutMs: key({
      type: "integer",
      default: 60_000,
      min: 1_000,
      doc: "Time limit of one fetchHistory call; a fetch that fails or times out is tried 3 times in all, then given up (the room's live messages wait meanwhile)",
    }),
  }),
  client: section("the outbound client-server API client", {
    concurrency: key({
      type: "integer",
      default: 16,
      min: 1,
      doc: "Requests to the homeserver in flight at once",
    }),
    retryAttempts: key({
      type: "integer",
      default: 8,
      min: 0,
      doc: "Retries of a request that failed with 429, 5xx or a network error (durable sends retry forever)",
    }),
    maxBackoffMs: key({ type: "integer", default: 60_000, min: 1, doc: "Longest wait between two retries" }),
    requestTimeoutMs: key({ type: "integer", default: 30_000, min: 1, doc: "Time limit of one request" }),
  }),
});

/** A key and where it sits, e.g. `{ path: "appservice.port", spec }`. */
export interface KeyEntry {
  path: string;
  spec: KeySpec;
}

/** Every key of the schema, depth first, in the order written. */
export function schemaKeys(node: SectionSpec = CONFIG_SCHEMA, prefix = ""): KeyEntry[] {
  return Object.entries(node.keys).flatMap(([name, child]) => {
    const path = prefix === "" ? name : `${prefix}.${name}`;
    return child.kind === "key" ? [{ path, spec: child }] : schemaKeys(child, path);
  });
}

/** The spec at a dotted path, or undefined. */
export function schemaNode(path: string): Node | undefined {
  let node: Node = CONFIG_SCHEMA;
  for (const part of path.split(".")) {
    if (node.kind !== "section") return undefined;
    const child: Node | undefined = Object.hasOwn(node.keys, part) ? node.keys[part] : undefined;
    if (child === undefined) return undefined;
    node = child;
  }
  return node;
}
