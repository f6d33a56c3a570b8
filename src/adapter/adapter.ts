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
import type { JsonValue } from "../store/json.js";

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
  /** For a login's DM portal (PortalSpec.direct): the login it belongs to. */
  login?: LoginId;
  /** The login that carries messages of senders without a login of their own (`relay set`). */
  relay?: LoginId;
  /** "private" for an invite-only portal (PortalSpec.visibility); absent for a public one. */
  visibility?: "private";
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
  /**
   * The thread the message is in (m.thread), with the root's remote id when known. A thread
   * message's fallback reply (`is_falling_back`) is not put in `replyTo`: only a real reply is.
   */
  thread?: { rootEventId: string; rootRemoteId?: RemoteMessageId };
  /**
   * Who the message mentions (m.mentions, else the pills in its HTML): Matrix users, and for
   * ghosts their remote ids. `room` for an @room mention. Absent when it mentions nobody.
   * `plainTextOf(message, adapter)` gives the text with mentions as `formatMention` writes them.
   */
  mentions?: {
    userIds: string[];
    remoteUsers: RemoteUserId[];
    room: boolean;
    /** The ghosts among `userIds` (and among the HTML's pills), each with its remote id. */
    ghosts: Record<string, RemoteUserId>;
  };
  /** For media (m.image, m.file, m.audio, m.video, m.sticker): the file; open it with ctx.openMedia. */
  file?: MatrixFile;
  /** The message this one replies to, with its remote id when the framework knows it. */
  replyTo?: { eventId: string; remoteId?: RemoteMessageId };
  /**
   * True when a portal's relay login carries it for a sender without a login of their own:
   * `body` and `html` are then already formatted with the sender's name (config
   * `logins.relayFormat`); the sender's own text is in `raw`.
   */
  relayed?: boolean;
  /** The event as the homeserver sent it, for anything not covered above. */
  raw: MatrixEvent;
}

/** A file for Matrix, as an adapter hands it over. */
export interface Attachment {
  /**
   * The bytes, a stream of them (a web ReadableStream or any async iterable of bytes, such
   * as a Node Readable), or an http(s) URL the framework fetches (size cap, timeouts,
   * bounded redirects). Read once, when `ctx.send` is called: the file is then kept by the
   * framework until it reached Matrix.
   */
  source: Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | URL;
  /** The file's name, e.g. "photo.jpg". */
  fileName: string;
  /** Sniffed from the bytes when absent. */
  mimetype?: string;
  /** Image or video size; read from PNG, JPEG, GIF and WebP headers when absent. */
  width?: number;
  height?: number;
  /** Audio or video length, when the adapter knows it. */
  durationMs?: number;
  /**
   * A smaller image of the file that the remote network supplies (a photo's or a video's
   * preview). Read with the file at the call, under the same limits, and kept and uploaded
   * once with it: Matrix clients get it as `info.thumbnail_url` and `info.thumbnail_info`
   * (mimetype, size, w, h). Optional: without one, clients make their own from the file.
   */
  thumbnail?: AttachmentThumbnail;
}

/** An attachment's thumbnail: an image, from the same kinds of source as the file. */
export interface AttachmentThumbnail {
  source: Attachment["source"];
  /** An image/* type; sniffed from the bytes when absent (PNG, JPEG, GIF, WebP). */
  mimetype?: string;
  /** Read from PNG, JPEG, GIF and WebP headers when absent. */
  width?: number;
  height?: number;
}

/** Matrix media ctx.openMedia can open: a file a Matrix user sent, or its thumbnail. */
export interface MatrixMedia {
  /** mxc:// URL (of the ciphertext, when encrypted). */
  url: string;
  mimetype?: string;
  /** Bytes, as the sender's client said. */
  size?: number;
  width?: number;
  height?: number;
  /** True when encrypted (content `file`, or `info.thumbnail_file`); ctx.openMedia decrypts it. */
  encrypted: boolean;
  /** The key, iv and hashes of an encrypted one (the content's `file` or `info.thumbnail_file`). */
  encryption?: JsonValue;
}

/** A file a Matrix user sent. */
export interface MatrixFile extends MatrixMedia {
  /**
   * The file's name (content `filename`, else `body`). When `filename` is set and differs
   * from `body`, the message's `body` is a caption.
   */
  name: string;
  durationMs?: number;
  /**
   * The thumbnail the sender's client made (`info.thumbnail_url`, or `info.thumbnail_file`
   * when encrypted) with what `info.thumbnail_info` says of it; open it with ctx.openMedia
   * (decrypted when encrypted), or link it with ctx.mediaLink (unencrypted only).
   */
  thumbnail?: MatrixMedia;
  /** The thumbnail's mxc:// URL when it is not encrypted (the same as `thumbnail.url`). */
  thumbnailUrl?: string;
}

/** An open Matrix file (ctx.openMedia): read `stream` to its end or cancel it. */
export interface OpenedMedia {
  /**
   * The bytes. It errors with a MediaTooLargeError past the size limit, and, for an
   * encrypted file, with a MediaDecryptionError at its end when the hash does not match: act
   * on the bytes only once it ended cleanly.
   */
  stream: ReadableStream<Uint8Array>;
  contentType: string;
  /** Bytes, when the homeserver said. */
  size?: number;
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

/** A Matrix user's presence, as the homeserver pushed it (for users with a login). */
export interface MatrixPresence {
  userId: string;
  presence: "online" | "unavailable" | "offline";
  /** The user's status message, when set. */
  statusMsg?: string;
  /** How long ago the user was last active (ms), when the homeserver said. */
  lastActiveAgoMs?: number;
  currentlyActive?: boolean;
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
  /**
   * "public": anyone on the homeserver may join (the default); "private": invite only. The
   * Matrix users of logins get invited: a `members` entry that is a login's remote id, the
   * login whose session ensures the portal, and a login's remote id that `ctx.join`s it.
   */
  visibility?: "public" | "private";
  /** Remote users already in the room: their ghosts are joined when the portal is made. */
  members?: RemoteUserId[];
  /** Publish the room in the homeserver's per-network room directory. */
  publishToDirectory?: boolean;
  /**
   * A one-to-one chat of a login (made through a SessionContext): the portal belongs to that
   * login, so the same remote chat seen by two logins is two rooms; the login's Matrix user
   * is invited as to a direct chat, and `members` (the other side) are joined.
   */
  direct?: boolean;
}

/** One part of a room's bridge info (MSC2346 `m.bridge`): the protocol, the network or the room. */
export interface BridgeInfoSection {
  /** A stable id, e.g. "irc", "libera", "#chan". */
  id: string;
  /** How people call it, e.g. "IRC", "Libera.Chat". */
  displayName?: string;
  /** mxc:// or http(s):// (uploaded once). */
  avatarUrl?: string;
  /** A link to it on the web, e.g. "https://libera.chat". */
  externalUrl?: string;
}

/**
 * How portals describe the remote network in their bridge info (`m.bridge` and
 * `uk.half-shot.bridge` state, MSC2346), so clients can show what a room is bridged to. The
 * room's own section comes from the portal: its remote id, name and avatar as set on Matrix.
 */
export interface BridgeInfoDescription {
  /** The protocol; `id` defaults to the adapter's name. */
  protocol?: Partial<BridgeInfoSection>;
  /** The network (a server, a workspace), when the protocol has several. */
  network?: BridgeInfoSection;
  /**
   * Per remote room: a link to it, and its network when portals are on different ones (it
   * then replaces `network`). Must not do I/O.
   */
  room?(remoteId: RemoteRoomId): { externalUrl?: string; network?: BridgeInfoSection } | undefined;
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
// History (optional capability: fetchHistory)
// ---------------------------------------------------------------------------------------

/** A remote message already bridged: where a gap fill starts. */
export interface HistoryAnchor {
  remoteId: RemoteMessageId;
  /** Its remote time (ms), as it was sent with (or when it was queued, without `ts`). */
  ts: number;
}

/** What `fetchHistory` is asked for. */
export interface HistoryQuery {
  /**
   * Only messages after this one: the newest message the portal bridged (a gap fill after a
   * reconnect). Absent for a portal with nothing bridged yet: the newest messages.
   */
  after?: HistoryAnchor;
  /** At most this many, the newest of them when more match (config backfill.maxOnCreate / maxAfterGap). */
  limit: number;
  /** Only messages at or after this remote time (ms; config backfill.maxAgeMs); absent: any age. */
  notBefore?: number;
}

/**
 * One remote message of a room's history, as `fetchHistory` returns it. The framework sends it
 * like `ctx.send(room, from, content, { remoteId, ts, replyTo, thread, externalUrl })`.
 */
export interface HistoryMessage {
  /** Required: a message already bridged (live or by an earlier fill) is skipped by it. */
  remoteId: RemoteMessageId;
  from: RemoteUserId;
  /** As for ctx.send, attachments included (read when the batch is queued). */
  content: MessageContent;
  /** Required: when it was sent on the remote network (ms); the event's origin_server_ts. */
  ts: number;
  replyTo?: RemoteMessageId;
  thread?: RemoteMessageId;
  externalUrl?: string;
  /** The sender's profile, set on their ghost as ctx.setProfile would (once per batch). */
  profile?: RemoteProfile;
}

/**
 * Fetches a remote room's history (see docs/backfill.md). The framework filters what comes
 * back (remote ids already bridged, older than `after` or `notBefore`, past `limit`), sorts it
 * by `ts`, oldest first, and queues it ahead of the room's live messages. Throw (or reject) to
 * fail the fetch: it is tried 3 times in all, then the room goes on without it.
 */
export type FetchHistory = (
  room: RemoteRoomId,
  query: HistoryQuery,
  call: CallContext,
) => Promise<HistoryMessage[]>;

// ---------------------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------------------

/**
 * Matrix -> remote handlers. The adapter itself has them (the bot-level handlers: one
 * connection speaks for every Matrix user, "<Alice> hi"), and so does each login's
 * RemoteSession (the user's own connection: the remote network sees the user themselves).
 * Each optional; absent = not supported.
 */
export interface MatrixHandlers {
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
}

export interface RemoteNetworkAdapter extends MatrixHandlers {
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

  // Matrix -> remote: the MatrixHandlers above (bot-level). With `logins`, an event from a
  // user with a connected login goes to that login's session instead (see LoginsCapability).

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
  /**
   * How a mention of someone looks on the remote network ("bob: " on IRC); used when a Matrix
   * message's pills are turned into text (`plainTextOf`). `remoteId` is set for a ghost.
   * Default: their display name (the pill's text). Must not do I/O.
   */
  formatMention?(user: { userId: string; remoteId?: RemoteUserId; displayName: string }): string;

  /** What portals' bridge info says about the network; absent: the protocol is the adapter's name. */
  readonly bridgeInfo?: BridgeInfoDescription;
  /**
   * History: the framework asks for a room's messages when its portal is made, and after a
   * gap when the adapter calls `ctx.backfill(room)`. A login's session may have its own
   * (history is often per account); for a login's DM portal only the session's is used.
   */
  fetchHistory?: FetchHistory;
  /**
   * Per-user logins: Matrix users log in to their own remote accounts and talk through their
   * own connections ("puppeting"). See LoginsCapability.
   */
  readonly logins?: LoginsCapability;
  /**
   * Commands of the adapter's own, next to the built-in ones (`help`, `login`, ...), run from
   * the management room or with the command prefix in a portal.
   */
  readonly commands?: readonly AdapterCommand[];
}

// ---------------------------------------------------------------------------------------
// Logins (optional capability)
// ---------------------------------------------------------------------------------------

/** A login: one remote account, as the adapter names it. Unique across the bridge. */
export type LoginId = string;

/** What a Matrix user may do with the bridge (config `permissions`). */
export type PermissionLevel = "relay" | "user" | "admin";

/** A Matrix user who uses the bridge. */
export interface BridgeUser {
  userId: string;
  /** From config `permissions`: "relay" may be relayed, "user" may log in, "admin" may act for others. */
  permission: PermissionLevel;
}

/** A stored login, as handed to `connect`. */
export interface Login<Data extends JsonValue = JsonValue> {
  /** The remote account's id (the `id` of the complete step). */
  readonly id: LoginId;
  /** The Matrix user it belongs to. */
  readonly userId: string;
  /** How the user sees it in `logins`, e.g. "alice on irc.libera.chat". */
  readonly name: string;
  /** The adapter's data from the complete step (tokens, server, nick), as last updated. */
  readonly data: Data;
}

/** A way to log in, as `login [flow]` and `GET /v3/login/flows` list them. */
export interface LoginFlow {
  /** Short, stable: "password", "qr", "token". */
  id: string;
  name: string;
  description: string;
}

/** One field of a `user_input` step; the management room asks for them one at a time. */
export interface LoginField {
  /**
   * "password", "token" and "2fa_code" fields are secrets: never logged or quoted back, kept
   * out of the bridge's store, and redacted from the room after reading.
   */
  type:
    "username" | "phone_number" | "email" | "password" | "2fa_code" | "token" | "url" | "domain" | "select";
  /** The key of this field's value in the submitted input. */
  id: string;
  name: string;
  description?: string;
  defaultValue?: string;
  /** A regular expression the whole value must match (checked by the framework). */
  pattern?: string;
  /** For "select": the allowed values. */
  options?: string[];
}

/** A cookie (or local-storage value) a `cookies` step wants from a web login. */
export interface LoginCookieField {
  id: string;
  required?: boolean;
  /** Where the value is found: cookie, local_storage, request_header, request_body, special. */
  sources: Array<{ type: string; name: string; cookieDomain?: string }>;
  pattern?: string;
}

/** A finished login: stored, then connected (see LoginsCapability.connect). */
export interface CompletedLogin<Data extends JsonValue = JsonValue> {
  /** The remote account's id; logging in to the same account again replaces its data. */
  id: LoginId;
  /** How the user sees it; default the id. */
  name?: string;
  /** What `connect` needs (tokens, server, nick). Stored encrypted when a key is configured. */
  data: Data;
}

interface StepBase {
  /** Stable for this kind of step, e.g. "password"; the provisioning API names it in its path. */
  id: string;
  /** What to tell the user, e.g. "Enter your password". */
  instructions: string;
}

/** A step of a login process: the same four types the provisioning API speaks. */
export type LoginStep =
  | (StepBase & { type: "user_input"; fields: LoginField[] })
  | (StepBase & {
      type: "display_and_wait";
      /** What to show: a QR code's data, emojis or a code to compare, or nothing. */
      display: { type: "qr" | "emoji" | "code" | "nothing"; data?: string; imageUrl?: string };
    })
  | (StepBase & {
      type: "cookies";
      cookies: { url: string; userAgent?: string; fields: LoginCookieField[]; extractJs?: string };
    })
  | (StepBase & { type: "complete"; login: CompletedLogin });

/** What the user gave for the current step; its `type` is always the current step's. */
export type LoginInput =
  | { type: "user_input"; values: Record<string, string> }
  | { type: "cookies"; values: Record<string, string> }
  /** Wait until the remote side moves on (a QR code scanned); resolve with the next step. */
  | { type: "display_and_wait" };

/**
 * One user's attempt to log in, one step at a time. The framework keeps the current step and
 * only ever submits input of that step's type (checked before `submit` is called: a wrong
 * type, a missing field, a value not matching a field's pattern is answered without
 * calling it). Calls never overlap. Throw a PermanentError with what the user should be told
 * ("wrong password") to end the process; any other error is reported as a failure too.
 */
export interface LoginProcess {
  /** The first step. */
  start(call: CallContext): Promise<LoginStep>;
  /** The next step after the user's input. */
  submit(input: LoginInput, call: CallContext): Promise<LoginStep>;
  /** The user gave up or the process expired. Release what it holds. Must not throw. */
  cancel?(): Promise<void>;
}

/**
 * The user's own connection to the remote network, built by `connect`. Its Matrix handlers
 * receive the events this user sends in portals (and their DMs): send them as the user.
 * The handler contract is the adapter's (ordering per room, errors, CallContext).
 */
export interface RemoteSession extends MatrixHandlers {
  /**
   * The user invited a ghost to a direct chat (or asked `create_dm`): open a one-to-one chat
   * with that remote user and return its remote room id. The framework makes the Matrix room
   * this login's DM portal for that id. Absent: DMs cannot be started from Matrix.
   */
  startDM?(user: RemoteUserId, call: CallContext): Promise<RemoteRoomId>;
  /**
   * Finds a remote user by something a person would type (a nick, a phone number, a JID):
   * the remote id, or null when there is none. Used by `resolve_identifier` and `create_dm`.
   */
  resolveIdentifier?(identifier: string, call: CallContext): Promise<RemoteUserId | null>;
  /**
   * The user's Matrix presence changed (online, away, offline, a status message): show it on
   * the remote account. Best effort: not retried; needs `receive_ephemeral` in the registration.
   */
  onPresence?(presence: MatrixPresence, call: CallContext): Promise<void>;

  /**
   * History as this login sees it: used for its DM portals, and for a shared portal when
   * this session asked (`ctx.backfill` through its SessionContext). See FetchHistory.
   */
  fetchHistory?: FetchHistory;
  /** Logs out on the remote side (revoke tokens). Called on `logout`, before `disconnect`. */
  logout?(call: CallContext): Promise<void>;
  /** Closes the connection (shutdown, logout, a replaced login). Must not throw. */
  disconnect(): Promise<void>;
}

/** A login's connection state, as the user sees it in `logins`. */
export type LoginState =
  "connecting" | "connected" | "transient_disconnect" | "bad_credentials" | "logged_out";

/**
 * What a session sends with: the BridgeContext, bound to one login. Sends name the login
 * they came from: into a remote room that has a DM portal for this login, they go there
 * (`portals.ensure(id, { direct: true })` makes one); a send `from` the login's own remote
 * id (the user wrote from another client) appears as the Matrix user themselves when double
 * puppeting is set up, else as the ghost.
 */
export interface SessionContext extends BridgeContext {
  readonly login: Login;
  /**
   * Reports a state change: `connected`, `transient_disconnect` (the session reconnects by
   * itself), `bad_credentials` (the user must log in again; the session is closed) or
   * `logged_out`. The user is told in their management room when a login goes bad, with
   * `message` when given. Must not do I/O (the framework's work happens in the background).
   */
  setState(state: Exclude<LoginState, "connecting">, message?: string): void;
  /** Stores new data (a refreshed token) or a new name for this login. */
  updateLogin(changes: { name?: string; data?: JsonValue }): Promise<void>;
  /**
   * The session's connection is gone and the session does not reconnect by itself: the
   * framework closes it (`disconnect`) and calls `connect` again with the logins' backoff (the
   * first retry after 1 s, doubling to 5 min; `transient_disconnect` with `message` meanwhile;
   * the user's events wait). Ignored after logout or stop, or if this session was replaced
   * already. Must not do I/O.
   */
  reconnect(message?: string): void;
  /**
   * Tells the login's Matrix user something about their connection (a nick taken, a kick) in
   * their management room, as an m.notice from the bot. Never rejects (a failure is logged).
   */
  tell(text: string): Promise<void>;
}

/**
 * The optional logins capability. Login processes are driven by the `login` command in the
 * management room and by the provisioning API alike.
 */
export interface LoginsCapability {
  /** The ways to log in; the first is the default of a bare `login`. */
  readonly flows: readonly LoginFlow[];
  /** Starts a login process with one of `flows`. Must not do I/O (that is `start`'s job). */
  start(flowId: string, user: BridgeUser): LoginProcess;
  /**
   * Builds the session of a stored login and connects it; called after a login completes and
   * for every stored login at start (with bounded concurrency). Resolve once connected (the
   * state becomes `connected`). Reject with a PermanentError when the credentials no longer
   * work (`bad_credentials`, the user is told its message); any other rejection counts as
   * `transient_disconnect` and the framework tries again with backoff.
   */
  connect(login: Login, ctx: SessionContext, call: CallContext): Promise<RemoteSession>;
}

// ---------------------------------------------------------------------------------------
// Commands (optional capability)
// ---------------------------------------------------------------------------------------

/** One argument of a command, in order; the last may take the rest of the line. */
export interface CommandArgument {
  name: string;
  help?: string;
  /** "string" (default) or "integer" (checked: a non-integer is refused with the usage). */
  type?: "string" | "integer";
  optional?: boolean;
  /** Takes the rest of the line, spaces included (last argument only). */
  rest?: boolean;
}

/** Where a command runs and for whom. */
export interface CommandContext {
  readonly user: BridgeUser;
  /** The room the command was sent in. */
  readonly roomId: string;
  /** The portal, when the command was sent in one. */
  readonly portal?: Portal;
  /** The user's connected login and its session, when they have one. */
  readonly login?: { login: Login; session: RemoteSession };
  /** Answers in the room (as an m.notice from the bot). */
  reply(text: string, html?: string): Promise<void>;
}

export interface AdapterCommand {
  /** One word, lower case, e.g. "nick". */
  name: string;
  /** One line for `help`. */
  help: string;
  args?: readonly CommandArgument[];
  /**
   * Who may run it: "user" (default; may use the bridge), "login" (needs a connected login;
   * CommandContext.login is set) or "admin".
   */
  requires?: "user" | "login" | "admin";
  /** Arguments by name (integers as numbers). Throw a PermanentError to tell the user why not. */
  run(args: Record<string, string | number>, cmd: CommandContext, call: CallContext): Promise<void>;
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
      /**
       * A file: uploaded by the framework, msgtype and `info` filled from it (m.image,
       * m.video, m.audio or m.file); `body`, when it is not the file name, is its caption.
       * A file over config media.maxBytes or the homeserver's m.upload.size rejects the call
       * with MediaTooLargeError, and nothing is queued.
       */
      attachment?: Attachment;
      /**
       * Remote users mentioned: their ghosts go in m.mentions, and where `html` (else `body`)
       * names one (by display name as last set, else by remote id) that name becomes a pill;
       * `html` is then sanitised (sanitizeHtml). Used by ctx.send; ctx.edit ignores it.
       */
      mentions?: RemoteUserId[];
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
  /**
   * The remote id of the root of the thread this message is in: sent as an m.thread relation
   * (with `replyTo` as its in-thread reply, else a fallback reply to the root). A root the
   * bridge never saw: sent as a plain message.
   */
  thread?: RemoteMessageId;
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
    opts?: Omit<SendOptions, "replyTo" | "thread">,
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
  /**
   * `opts.user` read the room up to the message with remote id `message`: an `m.read` receipt
   * from their ghost, or, from a SessionContext when `user` is the login's own account (the
   * user read it in another client), from the Matrix user themselves by double puppet (the
   * ghost when that is not set up). Best effort, not durable, like `typing`: a message the
   * bridge never saw is skipped; the homeserver's failures are logged, never retried.
   */
  markRead(room: RemoteRoomId, message: RemoteMessageId, opts: { user: RemoteUserId }): Promise<void>;
  /**
   * Sets a ghost's presence (and status message). Best effort, not durable, like `typing`;
   * the homeserver must have presence on.
   */
  setPresence(
    user: RemoteUserId,
    presence: "online" | "unavailable" | "offline",
    statusMsg?: string,
  ): Promise<void>;
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
   * Fills a gap in a room's portal (after a reconnect): the messages after the newest one it
   * bridged are fetched (`fetchHistory`, config backfill) and sent, oldest first, before
   * anything sent into the room after this call. Resolves once the request is stored (a
   * restart resumes it). Call it before sending the room's live messages after a reconnect.
   * Through a SessionContext: the login's DM portal of the room when it has one, and the
   * session's fetchHistory first. Does nothing without a portal or with backfill disabled.
   */
  backfill(room: RemoteRoomId): Promise<void>;
  /**
   * Tells the framework the remote network is reachable again: every room waiting to retry
   * an event (after a RetryableError or a timeout) tries at once instead of at its backoff.
   */
  remoteNetworkUp(): void;
  /**
   * Downloads Matrix media (mxc://) for relaying to the remote network, whole into memory,
   * refusing more than config media.maxBytes.
   */
  downloadMedia(mxcUrl: string): Promise<{ data: Uint8Array; contentType: string }>;
  /**
   * A link on the bridge's own listener (config media.publicUrl) that serves a Matrix file
   * to anyone holding it, without any Matrix token, until it expires (config
   * media.linkTtlMs, or `ttlMs`); for networks that carry only text. The link is signed
   * (config media.linkKey): a changed one answers 404, an expired one 410. `media` is an
   * mxc:// URI or a file with a `url` (a MatrixFile fits; its `name` names the download
   * unless `fileName` does). Must not do I/O. Throws when media.publicUrl is not set, for a
   * malformed mxc:// URI, and for an encrypted file (the link would serve its ciphertext).
   */
  mediaLink(
    media: string | { url: string; name?: string; encrypted?: boolean },
    opts?: { ttlMs?: number; fileName?: string },
  ): string;
  /**
   * Streams a Matrix file (an mxc:// URL, a MatrixFile, or a MatrixFile's `thumbnail`;
   * decrypted when it is encrypted) through the homeserver's authenticated media API, refusing
   * more than `maxBytes` (default: config media.maxBytes): up front from the Content-Length,
   * else by erroring the stream ("larger than N bytes"). With `thumbnail`, a thumbnail the
   * homeserver makes of about that size instead (not for an encrypted file: open the
   * sender's `file.thumbnail`). Rejects with the homeserver's error (e.g. 404 M_NOT_FOUND).
   */
  openMedia(
    media: string | MatrixMedia,
    opts?: { maxBytes?: number; thumbnail?: { width: number; height: number }; signal?: AbortSignal },
  ): Promise<OpenedMedia>;

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
