/**
 * The remote-network adapter contract: the one file a bridge author reads.
 *
 * A bridge is the framework plus one adapter. The adapter speaks the remote network (IRC,
 * XMPP, a chat API); the framework does everything Matrix-side. The contract is small:
 *
 * - required: `name`, `start(ctx)` and `stop()`;
 * - optional capabilities, one method each. An absent method means "not supported": the
 *   framework then tells the Matrix user so with a notice instead of dropping silently.
 *
 * Remote ids (users, rooms, messages) are strings the adapter chooses. The framework maps
 * them to Matrix ids through the config's templates (`ghosts: "irc_{id}"` gives
 * `@irc_alice:example.org`), escaping them reversibly; the adapter never builds Matrix ids.
 *
 * Calls into the adapter for one room never overlap: the next event of a room is delivered
 * only after the handler for the previous one settled. Different rooms run in parallel.
 *
 * Every Matrix event was durably recorded (and acknowledged to the homeserver) before a
 * handler sees it. What a handler's failure does depends on what it throws:
 * - `RetryableError` ("try again later": the network is down, rate-limited): retried with
 *   backoff (config `inbox.retry`) while the room's later events wait; other rooms go on.
 *   Call `ctx.remoteNetworkUp()` when the network is back and the waiting rooms retry at once.
 * - `PermanentError(userMessage)` ("this will never work"): not retried. The event becomes a
 *   dead letter and the sender is told "not bridged: <userMessage>" in the room.
 * - anything else (a bug): retried a few times (`inbox.retry.unexpectedAttempts`), then a
 *   dead letter with a generic message. Never a stack trace in the room.
 * - a timeout (`appservice.handlerTimeoutMs`): the call's `signal` is aborted and it is retried
 *   like a RetryableError. Stop work when the signal aborts: a success that arrives after the
 *   retry started means the remote side may see the event twice.
 * Dead letters are kept in the store; `bridgekit dead-letters` lists, retries and drops them.
 * Handlers should be idempotent where they can: after a crash, the one event a room was
 * handling is delivered again.
 */
import type { Logger } from "../common/logger.js";
import type { MatrixEvent } from "../matrix/events.js";
import type { ThirdPartyProtocol } from "../matrix/third-party.js";

export { PermanentError, RetryableError, UnsupportedError } from "../inbox/errors.js";

/**
 * The last argument of every handler and query: what this one call may use.
 */
export interface CallContext {
  /**
   * Aborted when the call's time is up (`appservice.handlerTimeoutMs`) or the bridge shuts
   * down. Pass it to fetch and the like; after it aborts, the outcome no longer counts.
   */
  readonly signal: AbortSignal;
  /** A logger bound to what is being handled (event, room and transaction ids). */
  readonly log: Logger;
}

/** A remote user, as the adapter names it (a nick, a JID, an account id). */
export type RemoteUserId = string;
/** A remote room, as the adapter names it (a channel, a MUC JID, a chat id). */
export type RemoteRoomId = string;
/** A remote message id, as the remote network names it; unique within its remote room. */
export type RemoteMessageId = string;

// ---------------------------------------------------------------------------------------
// What the framework hands to the adapter (Matrix -> remote)
// ---------------------------------------------------------------------------------------

/** A bridged room: one remote room and its Matrix room. */
export interface Portal {
  remoteId: RemoteRoomId;
  roomId: string;
  /** The portal's alias, e.g. `#irc_=23chan:example.org`, when it has one. */
  alias?: string;
}

/** Who did something on Matrix, as far as the adapter needs to know. */
export interface MatrixSender {
  userId: string;
  /** The sender's display name in the room, or their localpart when none is set. */
  displayName: string;
}

/** A Matrix message (m.room.message or m.sticker) in a portal. Edits arrive as MatrixEdit. */
export interface MatrixMessage {
  eventId: string;
  sender: MatrixSender;
  /** origin_server_ts of the event, in milliseconds. */
  ts: number;
  /** m.text, m.emote, m.notice, m.image, m.file, m.audio, m.video, m.location, ... */
  msgtype: string;
  /** Plain text. For media, the file name or caption. */
  body: string;
  /** HTML, when the sender's client sent org.matrix.custom.html. */
  html?: string;
  /** For media: the mxc:// URL. Download it with ctx.downloadMedia. */
  mediaUrl?: string;
  /** The message this one replies to, with its remote id when the framework knows it. */
  replyTo?: { eventId: string; remoteId?: RemoteMessageId };
  /** The event as the homeserver sent it, for anything not covered above. */
  raw: MatrixEvent;
}

export interface MatrixEdit {
  eventId: string;
  sender: MatrixSender;
  ts: number;
  /** The message being edited, with its remote id when the framework knows it. */
  target: { eventId: string; remoteId?: RemoteMessageId };
  /** The new content (m.new_content), flattened like MatrixMessage. */
  msgtype: string;
  body: string;
  html?: string;
  raw: MatrixEvent;
}

export interface MatrixRedaction {
  eventId: string;
  sender: MatrixSender;
  ts: number;
  target: { eventId: string; remoteId?: RemoteMessageId };
  reason?: string;
  raw: MatrixEvent;
}

export interface MatrixReaction {
  eventId: string;
  sender: MatrixSender;
  ts: number;
  target: { eventId: string; remoteId?: RemoteMessageId };
  /** The reaction key, usually an emoji. */
  key: string;
  raw: MatrixEvent;
}

export interface MatrixMembership {
  eventId: string;
  /** Who made the change (the same as `userId` for a join or a voluntary leave). */
  sender: MatrixSender;
  /** Whose membership changed. */
  userId: string;
  membership: "join" | "leave" | "invite" | "ban" | "knock";
  /** The membership before this event, when the homeserver told us. */
  previous?: string;
  displayName?: string;
  reason?: string;
  raw: MatrixEvent;
}

export interface MatrixTyping {
  /** Matrix users (not our ghosts) typing in the portal now; empty when nobody is. */
  userIds: string[];
}

export interface MatrixReceipt {
  userId: string;
  /** The event read up to, with its remote id when known. */
  eventId: string;
  remoteId?: RemoteMessageId;
  ts?: number;
}

export interface MatrixRoomChange {
  eventId: string;
  sender: MatrixSender;
  kind: "name" | "topic" | "avatar";
  /** The new name, topic or mxc:// avatar URL; "" when it was removed. */
  value: string;
  raw: MatrixEvent;
}

// ---------------------------------------------------------------------------------------
// What the adapter answers when the homeserver asks
// ---------------------------------------------------------------------------------------

/** A remote user's public profile; used for ghosts. */
export interface RemoteProfile {
  displayName?: string;
  /** An mxc:// URL, or an http(s):// URL the framework uploads once and remembers. */
  avatarUrl?: string;
}

/** How to create the Matrix room for a remote room. */
export interface PortalSpec {
  name?: string;
  topic?: string;
  /** mxc:// or http(s):// (uploaded once). */
  avatarUrl?: string;
  /** "public": anyone on the homeserver may join (the default); "private": invite only. */
  visibility?: "public" | "private";
  /** Remote users already in the room: their ghosts are joined when the portal is made. */
  members?: RemoteUserId[];
  /** Publish the room in the homeserver's per-network room directory. */
  publishToDirectory?: boolean;
}

/** Where a third-party lookup found something: the protocol, and the fields naming it there. */
export interface ThirdPartyMatch {
  /** A protocol id, one of `protocols`' keys. */
  protocol: string;
  /** The protocol's user or location fields, e.g. `{ network: "libera", nick: "alice" }`. */
  fields: Record<string, string>;
}

/**
 * Third-party protocol support (`/thirdparty/...`), see the spec's Protocol object. The
 * framework maps remote ids to ghosts and portal aliases (and back) on either side of these.
 */
export interface ThirdPartyCapability {
  /** Per protocol id (as listed in the registration's `protocols`). */
  protocols: Record<string, ThirdPartyProtocol>;
  /** Users matching the fields, e.g. `{ nick: "alice" }`. */
  lookupUser?(protocol: string, fields: Record<string, string>, call: CallContext): Promise<RemoteUserId[]>;
  /** Rooms matching the fields, e.g. `{ channel: "#chat" }`. */
  lookupLocation?(
    protocol: string,
    fields: Record<string, string>,
    call: CallContext,
  ): Promise<RemoteRoomId[]>;
  /**
   * Reverse lookup: where this remote user is, per protocol. The homeserver asks with a
   * Matrix user id; the framework answers "none" itself for ids that are not ghosts, and
   * asks here with the ghost's remote id. [] means unknown (answered 404). Matches for a
   * protocol not in `protocols` are dropped.
   */
  reverseLookupUser?(remoteId: RemoteUserId, call: CallContext): Promise<ThirdPartyMatch[]>;
  /**
   * Reverse lookup: where this remote room is, per protocol. The homeserver asks with a room
   * alias; the framework answers "none" itself for aliases outside the portal template, and
   * asks here with the remote room id the alias names. [] means unknown (answered 404).
   */
  reverseLookupLocation?(remoteId: RemoteRoomId, call: CallContext): Promise<ThirdPartyMatch[]>;
}

// ---------------------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------------------

export interface RemoteNetworkAdapter {
  /** A short id, e.g. "irc"; used in logs, metrics and the per-network room directory. */
  readonly name: string;

  /**
   * Connect to the remote network and start sending into Matrix through `ctx`. Called once,
   * after the framework is listening and the homeserver answered. Reject to abort start-up.
   * No Matrix event reaches the on* handlers before this resolves (they wait for it); the
   * homeserver's queries (queryUser, queryRoom) may arrive meanwhile.
   */
  start(ctx: BridgeContext): Promise<void>;
  /** Disconnect. Called once on shutdown, after Matrix-side intake stopped. Must not throw. */
  stop(): Promise<void>;

  /**
   * If true, `ctx.send` into a remote room that has no portal yet creates one (asking
   * `queryRoom` for its name and topic). If false or absent, portals are made only when a
   * Matrix user joins an alias in the namespace, and sends into unknown rooms fail.
   */
  readonly createPortalsOnDemand?: boolean;

  // -- Matrix -> remote. Each optional; absent = not supported. ---------------------------

  /** Send a Matrix message to the remote room. Return its remote id to enable edits, replies, reactions. */
  onMessage?(message: MatrixMessage, portal: Portal, call: CallContext): Promise<RemoteMessageId | void>;
  onEdit?(edit: MatrixEdit, portal: Portal, call: CallContext): Promise<void>;
  onRedaction?(redaction: MatrixRedaction, portal: Portal, call: CallContext): Promise<void>;
  /** Return the reaction's remote id if the remote network gives reactions ids. */
  onReaction?(reaction: MatrixReaction, portal: Portal, call: CallContext): Promise<RemoteMessageId | void>;
  /** A Matrix user (never one of our ghosts) joined, left, was invited, kicked or banned. */
  onMembership?(membership: MatrixMembership, portal: Portal, call: CallContext): Promise<void>;
  /** Best effort: typing notices are not retried. */
  onTyping?(typing: MatrixTyping, portal: Portal, call: CallContext): Promise<void>;
  /** Best effort: receipts are not retried. */
  onReceipt?(receipt: MatrixReceipt, portal: Portal, call: CallContext): Promise<void>;
  onRoomChange?(change: MatrixRoomChange, portal: Portal, call: CallContext): Promise<void>;

  // -- The homeserver's questions ----------------------------------------------------------

  /**
   * Does this remote user exist? Asked when the homeserver meets an unknown user id in the
   * ghost namespace. Returning a profile registers the ghost; null answers "no such user".
   */
  queryUser?(remoteId: RemoteUserId, call: CallContext): Promise<RemoteProfile | null>;
  /**
   * Does this remote room exist? Asked when someone joins or resolves an alias in the portal
   * namespace. Returning a spec creates the portal with that alias; null answers "no such room".
   */
  queryRoom?(remoteId: RemoteRoomId, call: CallContext): Promise<PortalSpec | null>;
  /** Maps a third-party URI (`irc://server/alice`) to a remote user. Must not do I/O. */
  userFromUri?(uri: URL): RemoteUserId | null;
  /** Maps a third-party URI (`irc://server/%23chan`) to a remote room. Must not do I/O. */
  roomFromUri?(uri: URL): RemoteRoomId | null;
  /** Third-party protocol descriptions and lookups. */
  readonly thirdParty?: ThirdPartyCapability;
}

// ---------------------------------------------------------------------------------------
// What the framework gives the adapter (remote -> Matrix, and services)
// ---------------------------------------------------------------------------------------

/** Matrix message content: a plain string (an m.text), or fields of m.room.message. */
export type MessageContent =
  | string
  | {
      /** Default "m.text". */
      msgtype?: "m.text" | "m.emote" | "m.notice" | (string & {});
      body: string;
      /** HTML; sent as org.matrix.custom.html. */
      html?: string;
      /** Any further content keys, sent as they are (e.g. "url" and "info" for media). */
      extra?: Record<string, unknown>;
    };

export interface SendOptions {
  /** When it happened on the remote network (ms); becomes the event's origin_server_ts. */
  ts?: number;
  /** The remote message id, so later edits, redactions, replies and reactions can find it. */
  remoteId?: RemoteMessageId;
  /** A link back to the message on the remote network (content.external_url). */
  externalUrl?: string;
  /** The remote id of the message this one replies to. */
  replyTo?: RemoteMessageId;
}

/**
 * The framework's side, handed to `start`. Every method that sends into Matrix is durable:
 * when its promise resolves, the action is stored in the outbox and will reach the
 * homeserver, in order per room, retried while the homeserver is down, across restarts.
 */
export interface BridgeContext {
  /** Sends a message from a remote user's ghost into a remote room's portal. */
  send(room: RemoteRoomId, from: RemoteUserId, content: MessageContent, opts?: SendOptions): Promise<void>;
  /** Replaces the message with remote id `target` (an m.replace edit). */
  edit(
    room: RemoteRoomId,
    from: RemoteUserId,
    target: RemoteMessageId,
    content: MessageContent,
    opts?: Omit<SendOptions, "replyTo">,
  ): Promise<void>;
  /** Redacts the message (or reaction) with remote id `target`. */
  redact(room: RemoteRoomId, from: RemoteUserId, target: RemoteMessageId, reason?: string): Promise<void>;
  /** Reacts to the message with remote id `target`. */
  react(
    room: RemoteRoomId,
    from: RemoteUserId,
    target: RemoteMessageId,
    key: string,
    opts?: Pick<SendOptions, "ts" | "remoteId">,
  ): Promise<void>;
  /** Shows or clears a typing notice. Best effort, not durable. */
  typing(room: RemoteRoomId, from: RemoteUserId, typing: boolean): Promise<void>;
  /** Joins a remote user's ghost to a portal (durable, ordered with messages). */
  join(room: RemoteRoomId, user: RemoteUserId): Promise<void>;
  /** Makes a remote user's ghost leave a portal (durable, ordered with messages). */
  leave(room: RemoteRoomId, user: RemoteUserId, reason?: string): Promise<void>;
  /** Sets a ghost's display name and avatar; unchanged values are not re-sent. */
  setProfile(user: RemoteUserId, profile: RemoteProfile): Promise<void>;
  /** Changes a portal's name, topic or avatar from the remote side. */
  setRoomInfo(
    room: RemoteRoomId,
    info: Pick<PortalSpec, "name" | "topic" | "avatarUrl">,
    from?: RemoteUserId,
  ): Promise<void>;
  /**
   * Tells the framework the remote network is reachable again: every room waiting to retry
   * an event (after a RetryableError or a timeout) tries at once instead of at its backoff.
   */
  remoteNetworkUp(): void;
  /** Downloads Matrix media (mxc://) for relaying to the remote network. */
  downloadMedia(mxcUrl: string): Promise<{ data: Uint8Array; contentType: string }>;

  readonly portals: PortalDirectory;
  readonly ghosts: GhostDirectory;
  /** The adapter's own persistent key-value space, in the bridge's store. */
  readonly kv: AdapterKeyValue;
  readonly log: Logger;
  /** The homeserver's server name, e.g. "example.org". */
  readonly domain: string;
}

/** Portal lookups and links. */
export interface PortalDirectory {
  /** The portal of a remote room, or null if none was made yet. */
  get(remoteId: RemoteRoomId): Promise<Portal | null>;
  /** The portal behind a Matrix room id, or null. */
  byRoomId(roomId: string): Promise<Portal | null>;
  /** Returns the portal, creating the Matrix room (with `spec`, or `queryRoom`'s answer) if needed. */
  ensure(remoteId: RemoteRoomId, spec?: PortalSpec): Promise<Portal>;
  /** The alias a portal for this remote room has or would have. Must not do I/O. */
  aliasFor(remoteId: RemoteRoomId): string;
}

/** Ghost lookups. */
export interface GhostDirectory {
  /** The Matrix user id of a remote user's ghost. Must not do I/O. */
  userId(remoteId: RemoteUserId): string;
  /** The remote user behind a ghost's user id, or null if it is not one of ours. Must not do I/O. */
  remoteId(userId: string): RemoteUserId | null;
}

/** A persistent key-value space for the adapter; values are JSON. */
export interface AdapterKeyValue {
  get<V>(key: string): Promise<V | undefined>;
  set<V>(key: string, value: V): Promise<void>;
  delete(key: string): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------
// How the framework loads an adapter
// ---------------------------------------------------------------------------------------

/** What the framework gives an adapter factory. */
export interface AdapterInit<Config = unknown> {
  /** The config file's `adapter.config` section, as written (validate it yourself). */
  config: Config;
  log: Logger;
  /** The folder of the config file, for resolving relative paths in `config`. */
  configDir: string;
}

/**
 * An adapter module's default export: builds the adapter. May validate `init.config` and
 * throw an Error naming the bad key; it must not connect anywhere yet (that is `start`'s job).
 */
export type AdapterFactory<Config = unknown> = (
  init: AdapterInit<Config>,
) => RemoteNetworkAdapter | Promise<RemoteNetworkAdapter>;

/** Identity helper that gives an adapter module's default export its type. */
export function defineAdapter<Config = unknown>(factory: AdapterFactory<Config>): AdapterFactory<Config> {
  return factory;
}
