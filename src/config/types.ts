/**
 * The loaded bridge config: every key defaulted, paths absolute. Mirrors CONFIG_SCHEMA in
 * schema.ts (a test checks that every schema key is here and nothing else).
 */
export interface BridgeConfig {
  homeserver: {
    /** Client-server API base URL, e.g. "http://127.0.0.1:8008" (as written). */
    url: string;
    /** The homeserver's server name, e.g. "example.org". */
    domain: string;
  };
  appservice: {
    /** Absolute path of the registration file. */
    registration: string;
    host: string;
    port: number;
    maxBodyBytes: number;
    handlerTimeoutMs: number;
    roomConcurrency: number;
  };
  inbox: {
    transactions: number;
    maxPendingItems: number;
    retry: {
      firstDelayMs: number;
      maxDelayMs: number;
      maxAttempts: number;
      maxAgeMs: number;
      unexpectedAttempts: number;
    };
    maxDeadLetters: number;
    deadLetterNotice: boolean;
  };
  lease: {
    standby: boolean;
    ttlMs: number;
  };
  /** Store URL; a sqlite URL is made absolute: `sqlite:///abs/path.db`. */
  store: string;
  bridge: {
    /** Ghost localpart template, e.g. "irc_{id}". */
    ghosts: string;
    /** Portal alias localpart template; undefined when the bridge makes no aliases. */
    portals?: string;
    botDisplayName?: string;
    unsupportedNotice: boolean;
    /** Spaces holding the portals: one for the network, one per login, or none. */
    spaces: "off" | "network" | "login";
  };
  /** Who may use the bridge: user id, server name or "*" -> level (defaulted when absent). */
  permissions: Record<string, "relay" | "user" | "admin">;
  commands: {
    /** Undefined: "!" + the adapter's name. */
    prefix?: string;
  };
  logins: {
    encryptionKey?: string;
    connectConcurrency: number;
    processTimeoutMs: number;
    waitTimeoutMs: number;
    relayFormat: string;
    relayEmoteFormat: string;
  };
  provisioning: {
    /** Undefined: the provisioning API is off. */
    sharedSecret?: string;
  };
  doublePuppet: {
    /** Absolute path of the double-puppet registration, when one is configured. */
    registration?: string;
  };
  adapter: {
    /** As written: a package name, or a path (relative paths resolve against configDir). */
    module: string;
    /** The `adapter.config` mapping, as written. */
    config: Record<string, unknown>;
  };
  logging: {
    level: LogLevel;
  };
  metrics: {
    enabled: boolean;
    host: string;
    /** Undefined: /metrics is served on the appservice port. */
    port?: number;
  };
  media: {
    /** Absolute path of the spool folder. */
    spoolDir: string;
    maxBytes: number;
    /** Undefined: ctx.mediaLink throws (no links are served). */
    publicUrl?: string;
    /** Set whenever publicUrl is. */
    linkKey?: string;
    linkTtlMs: number;
  };
  encryption: {
    allow: boolean;
    default: boolean;
    require: boolean;
    /** Required when allow is true. */
    pickleKey?: string;
    deviceName: string;
    trust: "untrusted" | "crossSignedOrLegacy" | "crossSigned";
  };
  backfill: {
    enabled: boolean;
    maxOnCreate: number;
    maxAfterGap: number;
    /** 0: no age limit. */
    maxAgeMs: number;
    concurrency: number;
    timeoutMs: number;
  };
  client: {
    concurrency: number;
    retryAttempts: number;
    maxBackoffMs: number;
    requestTimeoutMs: number;
  };
  /** Absolute path of the folder the config file is in (the working directory without a file). */
  configDir: string;
  /** Things worth telling the operator that do not stop the bridge (e.g. an unknown BRIDGEKIT_ variable). */
  warnings: string[];
}

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** The environment, as process.env gives it. */
export type Env = Readonly<Record<string, string | undefined>>;
