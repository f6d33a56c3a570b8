import type {
  AdapterKeyValue,
  BridgeContext,
  MatrixFile,
  MessageContent,
  OpenedMedia,
  PortalDirectory,
  PortalSpec,
  RemoteNetworkAdapter,
  RemoteProfile,
  SendOptions,
} from "../adapter/adapter.js";
import type { HomeserverClient } from "../client/homeserver-client.js";
import type { Logger } from "../common/logger.js";
import type { Attachments } from "../media/attachments.js";
import type { Outbox } from "../store/outbox.js";
import type { Ghosts } from "./ghosts.js";
import type { OutboxAction, ProfileAction } from "./outbox-payload.js";
import type { OutboxWorker } from "./outbox-worker.js";
import type { Portals } from "./portals.js";
import type { JsonValue } from "../store/json.js";
import { portalKey } from "../store/portal-store.js";
import {
  type MediaLinkOptions,
  type MediaLinks,
  type MediaLinkSource,
  mediaLinksOff,
} from "../media/media-links.js";
import { readAll } from "../media/size-cap.js";
import type { MessageMap } from "../store/message-map.js";
import type { PuppetIntent } from "../users/double-puppet.js";
import { keyOf } from "./portals.js";

export interface RemoteContextParts {
  adapter: RemoteNetworkAdapter;
  client: HomeserverClient;
  portals: Portals;
  ghosts: Ghosts;
  actions: Outbox<JsonValue>;
  profiles: Outbox<JsonValue>;
  actionWorker: OutboxWorker<JsonValue>;
  profileWorker: OutboxWorker<JsonValue>;
  kv: AdapterKeyValue;
  log: Logger;
  domain: string;
  /** Reads attachments into the spool at the call. */
  attachments: Attachments;
  /** The largest Matrix file openMedia and downloadMedia read (config media.maxBytes). */
  mediaMaxBytes: number;
  /** Ends every room's wait for a retry (set by the Bridge once the appservice exists). */
  retryNow: () => void;
  /** Makes ctx.mediaLink's links; undefined without config media.publicUrl. */
  mediaLinks?: MediaLinks;
  /** Finds the events markRead names. */
  messages: MessageMap;
  /** The double puppet of a login's user (markRead of their own account); set by the Bridge. */
  puppet?: (loginId: string) => Promise<PuppetIntent | undefined>;
  /** Records ctx.backfill's requests (src/backfill); undefined: ctx.backfill does nothing. */
  backfill?: { request(room: string, opts: { dm?: string; via?: string }): Promise<void> };
}

const PRESENCES: readonly string[] = ["online", "unavailable", "offline"];

function checkId(kind: string, value: unknown): void {
  if (typeof value !== "string" || value === "")
    throw new TypeError(`${kind} must be a non-empty string, got ${JSON.stringify(value)}`);
}

function checkContent(content: MessageContent): void {
  const body = typeof content === "string" ? content : content?.body;
  if (typeof body !== "string")
    throw new TypeError(`message content needs a string body, got ${JSON.stringify(content)}`);
  const mentions = typeof content === "string" ? undefined : content.mentions;
  if (
    mentions !== undefined &&
    (!Array.isArray(mentions) || !mentions.every((m) => typeof m === "string" && m !== ""))
  )
    throw new TypeError(`message content mentions must be remote user ids, got ${JSON.stringify(mentions)}`);
}

/**
 * The BridgeContext handed to the adapter. Sends are durable: each is validated (bad input rejects at the call), stored in
 * the outbox, and only then does the returned promise resolve; delivery happens in the
 * background, in order per remote room, retried until the homeserver accepts it.
 */
export class RemoteContext implements BridgeContext {
  readonly portals: PortalDirectory;
  readonly ghosts: Ghosts;
  readonly kv: AdapterKeyValue;
  readonly log: Logger;
  readonly domain: string;

  /**
   * The login this context sends for (a SessionContext, src/users/session-context.ts), or
   * undefined for the adapter's own context.
   */
  protected readonly loginId: string | undefined;

  constructor(
    protected readonly p: RemoteContextParts,
    loginId?: string,
  ) {
    this.loginId = loginId;
    this.portals = p.portals;
    this.ghosts = p.ghosts;
    this.kv = p.kv;
    this.log = p.log;
    this.domain = p.domain;
  }

  /**
   * With an attachment, the file is read into the spool before the promise resolves; one over
   * media.maxBytes or the homeserver's m.upload.size rejects with MediaTooLargeError and
   * nothing is queued.
   */
  async send(room: string, from: string, content: MessageContent, opts: SendOptions = {}): Promise<void> {
    checkContent(content);
    const action: OutboxAction = { op: "send", room, from, content };
    if (opts.remoteId !== undefined) action.remoteId = opts.remoteId;
    if (opts.externalUrl !== undefined) action.externalUrl = opts.externalUrl;
    if (opts.replyTo !== undefined) action.replyTo = opts.replyTo;
    if (opts.thread !== undefined) {
      checkId("thread root", opts.thread);
      action.thread = opts.thread;
    }
    return this.enqueueMessage(action, opts.ts);
  }

  async edit(
    room: string,
    from: string,
    target: string,
    content: MessageContent,
    opts: Omit<SendOptions, "replyTo" | "thread"> = {},
  ) {
    checkContent(content);
    checkId("edit target", target);
    const action: OutboxAction = { op: "edit", room, from, target, content };
    if (opts.remoteId !== undefined) action.remoteId = opts.remoteId;
    if (opts.externalUrl !== undefined) action.externalUrl = opts.externalUrl;
    return this.enqueueMessage(action, opts.ts);
  }

  async redact(room: string, from: string, target: string, reason?: string) {
    checkId("redaction target", target);
    const action: OutboxAction = { op: "redact", room, from, target };
    if (reason !== undefined) action.reason = reason;
    return this.enqueue(action);
  }

  async react(
    room: string,
    from: string,
    target: string,
    key: string,
    opts: Pick<SendOptions, "ts" | "remoteId"> = {},
  ) {
    checkId("reaction target", target);
    checkId("reaction key", key);
    const action: OutboxAction = { op: "react", room, from, target, key };
    if (opts.remoteId !== undefined) action.remoteId = opts.remoteId;
    return this.enqueue(action, opts.ts);
  }

  async join(room: string, user: string) {
    return this.enqueue({ op: "join", room, from: user });
  }

  async leave(room: string, user: string, reason?: string) {
    const action: OutboxAction = { op: "leave", room, from: user };
    if (reason !== undefined) action.reason = reason;
    return this.enqueue(action);
  }

  async setRoomInfo(room: string, info: Pick<PortalSpec, "name" | "topic" | "avatarUrl">, from?: string) {
    const action: OutboxAction = { op: "roomInfo", room, info };
    if (from !== undefined) action.from = from;
    return this.enqueue(action);
  }

  async setProfile(user: string, profile: RemoteProfile): Promise<void> {
    checkId("remote user id", user);
    this.p.ghosts.userId(user); // throws now, not at delivery, if the id cannot be a Matrix id
    const action: ProfileAction = { user, profile };
    await this.p.profiles.enqueue(user, action as unknown as JsonValue);
    this.p.profileWorker.kick(user);
  }

  /** Best effort and not durable: a typing notice that arrives late is worse than none. */
  async typing(room: string, from: string, typing: boolean): Promise<void> {
    const portal = await this.portalOf(room);
    if (!portal) return;
    const ghost = await this.p.ghosts.ensure(from);
    await ghost.ensureJoined(portal.roomId);
    await ghost.setTyping(portal.roomId, typing);
  }

  /** Best effort and not durable, like typing: failures are logged, never thrown or retried. */
  async markRead(room: string, message: string, opts: { user: string }): Promise<void> {
    checkId("remote room id", room);
    checkId("remote message id", message);
    checkId("remote user id", opts?.user);
    this.p.ghosts.userId(opts.user);
    try {
      const portal = await this.portalOf(room);
      const link = portal ? await this.p.messages.byRemoteId(keyOf(portal), message) : undefined;
      if (!portal || !link) {
        this.log.debug({ room, message }, "read receipt for a message the bridge never saw; skipped");
        return;
      }
      if (await this.readAsUser(opts.user, portal.roomId, link.eventId)) return;
      const ghost = await this.p.ghosts.ensure(opts.user);
      await ghost.ensureJoined(portal.roomId);
      await ghost.sendReadReceipt(portal.roomId, link.eventId);
    } catch (err) {
      this.log.warn({ err, room, message }, "read receipt not sent");
    }
  }

  /** The user's own account read it (another client): as the Matrix user, when double puppeting works. */
  private async readAsUser(user: string, roomId: string, eventId: string): Promise<boolean> {
    if (this.loginId === undefined || user !== this.loginId) return false;
    const puppet = await this.p.puppet?.(this.loginId);
    if (!puppet) return false;
    try {
      await puppet.sendReadReceipt(roomId, eventId);
      return true;
    } catch (err) {
      if ((err as { status?: number }).status !== 403) throw err;
      return false; // the user is not in the room: the ghost reads instead
    }
  }

  /** Best effort and not durable, like typing: failures are logged, never thrown or retried. */
  async setPresence(user: string, presence: "online" | "unavailable" | "offline", statusMsg?: string) {
    checkId("remote user id", user);
    if (!PRESENCES.includes(presence))
      throw new TypeError(`presence must be one of ${PRESENCES.join(", ")}, got ${JSON.stringify(presence)}`);
    if (statusMsg !== undefined && typeof statusMsg !== "string")
      throw new TypeError(`statusMsg must be a string, got ${JSON.stringify(statusMsg)}`);
    this.p.ghosts.userId(user);
    try {
      const ghost = await this.p.ghosts.ensure(user);
      await ghost.setPresence(presence, statusMsg);
    } catch (err) {
      this.log.warn({ err, user }, "presence not set");
    }
  }

  /** The portal a session's best-effort action goes to: its login's DM portal first. */
  private async portalOf(room: string) {
    return (
      (this.loginId !== undefined ? await this.p.portals.get(room, this.loginId) : null) ??
      (await this.p.portals.get(room))
    );
  }

  /** A fill of the room's portal (this login's DM portal of it, when it has one), run before what is sent after. */
  async backfill(room: string): Promise<void> {
    checkId("remote room id", room);
    if (!this.p.backfill) return;
    const login = this.loginId;
    const dm = login !== undefined && (await this.p.portals.get(room, login)) ? login : undefined;
    await this.p.backfill.request(room, {
      ...(dm !== undefined ? { dm } : {}),
      ...(login !== undefined ? { via: login } : {}),
    });
  }

  remoteNetworkUp(): void {
    this.p.retryNow();
  }

  async downloadMedia(mxcUrl: string): Promise<{ data: Uint8Array; contentType: string }> {
    const media = await this.openMedia(mxcUrl);
    return { data: await readAll(media.stream), contentType: media.contentType };
  }

  openMedia(
    media: string | MatrixFile,
    opts: { maxBytes?: number; thumbnail?: { width: number; height: number }; signal?: AbortSignal } = {},
  ): Promise<OpenedMedia> {
    return this.p.client.openMedia(media, { maxBytes: this.p.mediaMaxBytes, ...opts });
  }

  /** A send or edit: its attachment (if any) is spooled first, and discarded if queueing fails. */
  private async enqueueMessage(
    action: Extract<OutboxAction, { op: "send" | "edit" }>,
    ts?: number,
  ): Promise<void> {
    const content = action.content;
    if (typeof content === "string" || content.attachment === undefined) return this.enqueue(action, ts);
    const { attachment, ...rest } = content;
    const media = await this.p.attachments.prepare(attachment);
    action.content = rest;
    action.media = media;
    try {
      await this.enqueue(action, ts);
    } catch (err) {
      await this.p.attachments.discard(media);
      throw err;
    }
  }

  mediaLink(media: MediaLinkSource, opts?: MediaLinkOptions): string {
    return this.p.mediaLinks ? this.p.mediaLinks.link(media, opts) : mediaLinksOff();
  }

  private async enqueue(action: OutboxAction, ts?: number): Promise<void> {
    checkId("remote room id", action.room);
    if (action.from !== undefined) {
      checkId("remote user id", action.from);
      this.p.ghosts.userId(action.from); // an id that cannot become a Matrix id fails here, at the caller
    }
    if (ts !== undefined) {
      if (!Number.isInteger(ts) || ts < 0)
        throw new TypeError(`ts must be a non-negative integer (ms), got ${ts}`);
      action.ts = ts;
    }
    let key = action.room;
    if (this.loginId !== undefined) {
      // A session's send goes to its login's DM portal of the room when there is one.
      action.login = this.loginId;
      if (await this.p.portals.get(action.room, this.loginId)) {
        action.dm = true;
        key = portalKey(action.room, this.loginId);
      }
    }
    if (!action.dm && !this.p.adapter.createPortalsOnDemand && !(await this.p.portals.get(action.room))) {
      throw new Error(
        `remote room "${action.room}" has no portal; create one with ctx.portals.ensure() or set createPortalsOnDemand`,
      );
    }
    await this.p.actions.enqueue(key, action as unknown as JsonValue);
    this.p.actionWorker.kick(key);
  }
}
