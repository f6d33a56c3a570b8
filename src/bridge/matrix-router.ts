import { LRUCache } from "lru-cache";
import type {
  CallContext,
  GhostDirectory,
  MatrixPresence,
  MatrixReceipt,
  RemoteSession,
  MatrixSender,
  Portal,
  RemoteNetworkAdapter,
} from "../adapter/adapter.js";
import type { AppserviceHandlers, TransactionContext } from "../appservice/handlers.js";
import { UnsupportedError } from "../inbox/errors.js";
import type { HomeserverClient } from "../client/homeserver-client.js";
import type { Logger } from "../common/logger.js";
import { localpart, type EphemeralEvent, type MatrixEvent } from "../matrix/events.js";
import type { NamespaceMatcher } from "../registration/namespaces.js";
import type { MessageMap } from "../store/message-map.js";
import type { HANDLER_FOR } from "./matrix-to-adapter.js";
import { classifyEvent, relation, type Classified, type Relation } from "./matrix-to-adapter.js";
import { keyOf, type Portals } from "./portals.js";
import type { Carrier, Carriers } from "./carriers.js";
import type { Commands } from "../commands/commands.js";
import { isDoublePuppetEcho } from "../users/double-puppet.js";

/** The display-name cache's key for a user in a room. */
const displayNameKey = (roomId: string, userId: string) => `${roomId} ${userId}`;

/** For events that point at no other event. */
const NO_REMOTE_IDS = (): undefined => undefined;

export interface MatrixRouterOptions {
  adapter: RemoteNetworkAdapter;
  /** Who carries each event (the sender's login, a relay, the bot-level handlers). */
  carriers: Carriers;
  /** The bot's commands and management rooms; absent in bare tests. */
  commands?: Commands;
  /** What the bridge's double puppets mark their events with; such events are its own echoes. */
  doublePuppetMarker?: string;
  /** The connected sessions of a Matrix user, for their presence; absent without logins. */
  sessionsOf?: (userId: string) => readonly RemoteSession[];
  /** A portal's room was upgraded (m.room.tombstone); see RoomUpgrades. */
  onTombstone?: (portal: Portal, event: MatrixEvent) => Promise<void>;
  /** A ghost was invited by a Matrix user (a DM to start); see DirectChats. */
  onGhostInvite?: (event: MatrixEvent, call: CallContext) => Promise<void>;
  client: HomeserverClient;
  matcher: NamespaceMatcher;
  portals: Portals;
  messages: MessageMap;
  /** For the remote ids of mentioned ghosts; absent in bare tests (no ghost is recognised). */
  ghosts?: Pick<GhostDirectory, "remoteId">;
  log: Logger;
  /** How many display names to remember (room, user) -> name. */
  displayNameCacheSize?: number;
  /**
   * Resolves once the adapter has started (rejects if it failed to). Events wait for it, so a
   * transaction pushed while the adapter is still connecting is not handed to it too early.
   */
  adapterReady?: () => Promise<void>;
}

/**
 * Matrix -> remote: what the bridge does with each pushed room event. Drops its own echoes
 * (anything sent by the bot or a ghost), finds the portal, turns the event into the adapter's
 * types, calls the adapter, and records remote message ids. A thrown adapter error
 * propagates to the inbox, which retries or dead-letters the event (src/inbox/lanes.ts);
 * what the adapter cannot carry at all throws an UnsupportedError.
 */
export class MatrixRouter {
  private readonly displayNames: LRUCache<string, string>;
  /** Who was typing in each room at the last m.typing, to tell sessions about changes only. */
  private readonly typingBefore = new LRUCache<string, string[]>({ max: 10_000 });
  /** Set once `adapterReady` resolved: later events skip waiting for it. */
  private adapterReady = false;
  private readonly ghostRemoteId: (userId: string) => string | null;

  constructor(private readonly o: MatrixRouterOptions) {
    this.displayNames = new LRUCache({ max: o.displayNameCacheSize ?? 50_000 });
    const ghosts = o.ghosts;
    this.ghostRemoteId = ghosts ? (userId) => ghosts.remoteId(userId) : () => null;
  }

  /** The handlers the appservice calls; queries are added by the Bridge. */
  handlers(): Pick<AppserviceHandlers, "onEvent" | "onEphemeral"> {
    return {
      onEvent: (event, ctx) => this.onEvent(event, ctx),
      onEphemeral: (events, ctx) => this.onEphemeral(events, ctx),
    };
  }

  async onEvent(event: MatrixEvent, ctx: TransactionContext): Promise<void> {
    // Only member events change the ghosts' membership records (the common message skips this).
    if (event.type === "m.room.member") await this.o.client.observeEvent(event);
    this.rememberDisplayName(event);
    if (this.o.matcher.mayActAs(event.sender)) return; // our own echo
    // A double puppet's echo: the user's own remote account wrote it, the remote side has it.
    if (
      this.o.doublePuppetMarker !== undefined &&
      isDoublePuppetEcho(event.content, this.o.doublePuppetMarker)
    )
      return;
    // A Matrix user kicking or inviting a ghost (or the bot) is not a Matrix user's membership.
    if (
      event.type === "m.room.member" &&
      event.state_key !== undefined &&
      this.o.matcher.mayActAs(event.state_key)
    ) {
      if (event.content.membership === "invite") await this.onInvite(event, ctx);
      return;
    }
    // The cached answers are taken without an await: most events need no I/O at all.
    let portal = this.o.portals.cachedByRoomId(event.room_id);
    if (portal === undefined) portal = await this.o.portals.byRoomId(event.room_id);
    if (
      event.type === "m.room.message" &&
      this.o.commands &&
      (await this.o.commands.onMessage(event, portal, ctx))
    )
      return;
    if (!portal) {
      if (
        event.type === "m.room.member" &&
        event.content.membership === "leave" &&
        event.state_key === event.sender
      )
        await this.o.commands?.onLeave(event.sender, event.room_id);
      return;
    }
    if (event.type === "m.room.tombstone" && event.state_key === "") {
      await this.o.onTombstone?.(portal, event);
      return;
    }

    const sender = this.cachedSender(event) ?? (await this.fetchSender(event));
    const rel = relation(event);
    const redacts = typeof event.redacts === "string" ? event.redacts : event.content.redacts;
    const remoteIds =
      rel.eventId === undefined && rel.replyTo === undefined && redacts === undefined
        ? NO_REMOTE_IDS
        : await this.remoteIds(rel, redacts);
    const classified = classifyEvent(event, sender, remoteIds, rel, this.ghostRemoteId);
    if (classified.kind === "ignored") {
      this.o.log.debug({ eventId: event.event_id, why: classified.why }, "event not for the adapter");
      return;
    }
    if (!this.adapterReady) {
      await this.o.adapterReady?.();
      this.adapterReady = true;
    }
    const quiet = classified.kind === "membership" || classified.kind === "roomChange";
    const carrier = this.o.carriers.of(event.sender, portal, quiet);
    if (carrier === undefined) return;
    const handlers = carrier.handlers;
    if (classified.kind === "message" && handlers.onMessage) {
      // The common case inline: one async call less per message.
      const message =
        carrier.kind === "relay" ? this.o.carriers.relayed(classified.message) : classified.message;
      const remoteId = await handlers.onMessage(message, portal, ctx);
      const link = this.linkIfGiven(portal, event.event_id, remoteId);
      if (link) await link;
      return;
    }
    await this.dispatch(classified, carrier, portal, event, ctx);
  }

  private async dispatch(
    c: Exclude<Classified, { kind: "ignored" }>,
    carrier: Carrier,
    portal: Portal,
    event: MatrixEvent,
    call: CallContext,
  ) {
    const a = carrier.handlers;
    switch (c.kind) {
      case "message":
        if (!a.onMessage) throw this.unsupported(c.kind, carrier);
        return this.linkIfGiven(portal, event.event_id, await a.onMessage(c.message, portal, call));
      case "edit":
        if (!a.onEdit) throw this.unsupported(c.kind, carrier);
        return a.onEdit(c.edit, portal, call);
      case "redaction":
        if (!a.onRedaction) throw this.unsupported(c.kind, carrier);
        return a.onRedaction(c.redaction, portal, call);
      case "reaction":
        if (!a.onReaction) throw this.unsupported(c.kind, carrier);
        return this.linkIfGiven(portal, event.event_id, await a.onReaction(c.reaction, portal, call));
      case "membership":
        return a.onMembership?.(c.membership, portal, call); // silence is fine: joins need no notice
      case "roomChange":
        return a.onRoomChange?.(c.change, portal, call);
    }
  }

  /** An invite of the bot (a management room, a room to bridge) or of a ghost (a DM). */
  private async onInvite(event: MatrixEvent, call: CallContext): Promise<void> {
    if (event.state_key === this.o.client.botUserId) await this.o.commands?.onBotInvite(event);
    else await this.o.onGhostInvite?.(event, call);
  }

  /** Typing and receipts: best effort, never retried, so failures are logged, not thrown. */
  async onEphemeral(events: EphemeralEvent[], call: CallContext): Promise<void> {
    await this.o.adapterReady?.();
    for (const event of events) {
      if (event.type === "m.presence") {
        await this.presence(event, call);
        continue;
      }
      if (event.room_id === undefined) continue;
      const a = this.o.adapter;
      const wanted =
        a.logins !== undefined || (event.type === "m.typing" ? "onTyping" in a : "onReceipt" in a);
      if (!wanted) continue;
      try {
        const portal = await this.o.portals.byRoomId(event.room_id);
        if (!portal) continue;
        if (event.type === "m.typing") {
          const ids = Array.isArray(event.content.user_ids) ? (event.content.user_ids as unknown[]) : [];
          const userIds = ids.filter(
            (u): u is string => typeof u === "string" && !this.o.matcher.mayActAs(u),
          );
          await this.typing(portal, userIds, call);
        } else if (event.type === "m.receipt") {
          for (const receipt of await this.receipts(event)) {
            const carrier = this.quietCarrier(receipt.userId, portal);
            if (carrier?.kind !== "relay") await carrier?.handlers.onReceipt?.(receipt, portal, call);
          }
        }
      } catch (err) {
        this.o.log.warn(
          { err, type: event.type, roomId: event.room_id },
          "ephemeral event not delivered to the adapter",
        );
      }
    }
  }

  /**
   * Who is typing now: each user with a login of their own is told to their session when
   * their own typing changed; the rest go to the bot-level handler as one list (as before).
   */
  private async typing(portal: Portal, userIds: string[], call: CallContext): Promise<void> {
    const before = this.typingBefore.get(portal.roomId) ?? [];
    if (userIds.length > 0) this.typingBefore.set(portal.roomId, userIds);
    else this.typingBefore.delete(portal.roomId);
    const byBot: string[] = [];
    for (const userId of new Set([...before, ...userIds])) {
      const carrier = this.quietCarrier(userId, portal);
      const now = userIds.includes(userId);
      if (carrier?.kind === "bot") {
        if (now) byBot.push(userId);
      } else if (carrier?.kind === "session" && now !== before.includes(userId)) {
        await carrier.handlers.onTyping?.({ userIds: now ? [userId] : [] }, portal, call);
      }
    }
    await this.o.adapter.onTyping?.({ userIds: byBot }, portal, call);
  }

  /** A Matrix user's presence, to the sessions of their logins; best effort like typing. */
  private async presence(event: EphemeralEvent, call: CallContext): Promise<void> {
    const userId = typeof event.sender === "string" ? event.sender : undefined;
    const state = event.content.presence;
    if (userId === undefined || this.o.matcher.mayActAs(userId)) return;
    if (state !== "online" && state !== "unavailable" && state !== "offline") return;
    const presence: MatrixPresence = { userId, presence: state };
    const { status_msg, last_active_ago, currently_active } = event.content;
    if (typeof status_msg === "string") presence.statusMsg = status_msg;
    if (typeof last_active_ago === "number") presence.lastActiveAgoMs = last_active_ago;
    if (typeof currently_active === "boolean") presence.currentlyActive = currently_active;
    for (const session of this.o.sessionsOf?.(userId) ?? []) {
      try {
        await session.onPresence?.(presence, call);
      } catch (err) {
        this.o.log.warn({ err, userId }, "presence not delivered to a session");
      }
    }
  }

  /** The carrier of a best-effort event, or undefined when nobody carries it now. */
  private quietCarrier(userId: string, portal: Portal): Carrier | undefined {
    try {
      return this.o.carriers.of(userId, portal, true);
    } catch {
      return undefined; // a login reconnecting: typing and receipts are not worth waiting for
    }
  }

  private async receipts(event: EphemeralEvent): Promise<MatrixReceipt[]> {
    const out: MatrixReceipt[] = [];
    for (const [eventId, byType] of Object.entries(event.content)) {
      const read = (byType as Record<string, unknown> | null)?.["m.read"];
      if (typeof read !== "object" || read === null) continue;
      for (const [userId, info] of Object.entries(read as Record<string, { ts?: unknown }>)) {
        if (this.o.matcher.mayActAs(userId)) continue;
        // Our double puppet's receipt: the remote account read it already.
        const marker = this.o.doublePuppetMarker;
        if (marker !== undefined && isDoublePuppetEcho(info, marker)) continue;
        const receipt: MatrixReceipt = { userId, eventId };
        const remoteId = (await this.o.messages.byEventId(eventId))?.remoteId;
        if (remoteId !== undefined) receipt.remoteId = remoteId;
        if (typeof info?.ts === "number") receipt.ts = info.ts;
        out.push(receipt);
      }
    }
    return out;
  }

  /** Records the remote id the adapter returned, if any; no promise when there is none. */
  private linkIfGiven(portal: Portal, eventId: string, remoteId: string | void): Promise<void> | undefined {
    if (typeof remoteId !== "string" || remoteId === "") return undefined;
    return this.o.messages.link({ remoteRoomId: keyOf(portal), remoteId, roomId: portal.roomId, eventId });
  }

  /** The error for what the carrier cannot carry; its dead letter tells the sender. */
  private unsupported(kind: keyof typeof HANDLER_FOR, carrier: Carrier): UnsupportedError {
    const what = { message: "messages", edit: "edits", redaction: "redactions", reaction: "reactions" }[
      kind as "message" | "edit" | "redaction" | "reaction"
    ];
    const who =
      carrier.kind === "bot" ? `the ${this.o.adapter.name} bridge` : `your ${this.o.adapter.name} login`;
    return new UnsupportedError(`${who} cannot carry ${what} to the remote network`);
  }

  /** Remote ids of the events this one points at (reply, edit, reaction, redaction target). */
  private async remoteIds(
    rel: Readonly<Relation>,
    redacts: unknown,
  ): Promise<(eventId: string) => string | undefined> {
    const ids = [rel.eventId, rel.replyTo, redacts].filter((x): x is string => typeof x === "string");
    const found = new Map<string, string>();
    for (const id of ids) {
      const link = await this.o.messages.byEventId(id);
      if (link) found.set(id, link.remoteId);
    }
    return (id) => found.get(id);
  }

  /** The sender with the display name remembered for the room, or undefined if none is. */
  private cachedSender(event: MatrixEvent): MatrixSender | undefined {
    const name = this.displayNames.get(displayNameKey(event.room_id, event.sender));
    return name === undefined ? undefined : { userId: event.sender, displayName: name };
  }

  /**
   * The sender with its room display name when none is remembered: asked once of the
   * homeserver (the localpart if it has none), then remembered.
   */
  private async fetchSender(event: MatrixEvent): Promise<MatrixSender> {
    const member = await this.o.client
      .intent(this.o.client.botUserId)
      .getStateEvent(event.room_id, "m.room.member", event.sender)
      .catch((err: unknown) => {
        this.o.log.debug({ err, userId: event.sender }, "no member state for a display name");
        return undefined;
      });
    const fetched = member?.displayname;
    const name = typeof fetched === "string" && fetched !== "" ? fetched : localpart(event.sender);
    this.displayNames.set(displayNameKey(event.room_id, event.sender), name);
    return { userId: event.sender, displayName: name };
  }

  private rememberDisplayName(event: MatrixEvent): void {
    if (event.type !== "m.room.member" || event.state_key === undefined) return;
    const key = displayNameKey(event.room_id, event.state_key);
    const name = event.content.displayname;
    if (event.content.membership === "join" && typeof name === "string" && name !== "")
      this.displayNames.set(key, name);
    else if (event.content.membership !== "join") this.displayNames.delete(key);
  }
}
