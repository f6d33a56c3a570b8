import { LRUCache } from "lru-cache";
import type {
  CallContext,
  MatrixReceipt,
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
import type { Portals } from "./portals.js";

/** The display-name cache's key for a user in a room. */
const displayNameKey = (roomId: string, userId: string) => `${roomId} ${userId}`;

/** For events that point at no other event. */
const NO_REMOTE_IDS = (): undefined => undefined;

export interface MatrixRouterOptions {
  adapter: RemoteNetworkAdapter;
  client: HomeserverClient;
  matcher: NamespaceMatcher;
  portals: Portals;
  messages: MessageMap;
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
  /** Set once `adapterReady` resolved: later events skip waiting for it. */
  private adapterReady = false;

  constructor(private readonly o: MatrixRouterOptions) {
    this.displayNames = new LRUCache({ max: o.displayNameCacheSize ?? 50_000 });
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
    // A Matrix user kicking or inviting a ghost is not a Matrix user's membership.
    if (
      event.type === "m.room.member" &&
      event.state_key !== undefined &&
      this.o.matcher.mayActAs(event.state_key)
    ) {
      return;
    }
    // The cached answers are taken without an await: most events need no I/O at all.
    let portal = this.o.portals.cachedByRoomId(event.room_id);
    if (portal === undefined) portal = await this.o.portals.byRoomId(event.room_id);
    if (!portal) return;

    const sender = this.cachedSender(event) ?? (await this.fetchSender(event));
    const rel = relation(event);
    const redacts = typeof event.redacts === "string" ? event.redacts : event.content.redacts;
    const remoteIds =
      rel.eventId === undefined && rel.replyTo === undefined && redacts === undefined
        ? NO_REMOTE_IDS
        : await this.remoteIds(rel, redacts);
    const classified = classifyEvent(event, sender, remoteIds, rel);
    if (classified.kind === "ignored") {
      this.o.log.debug({ eventId: event.event_id, why: classified.why }, "event not for the adapter");
      return;
    }
    if (!this.adapterReady) {
      await this.o.adapterReady?.();
      this.adapterReady = true;
    }
    const adapter = this.o.adapter;
    if (classified.kind === "message" && adapter.onMessage) {
      // The common case inline: one async call less per message.
      const remoteId = await adapter.onMessage(classified.message, portal, ctx);
      const link = this.linkIfGiven(portal, event.event_id, remoteId);
      if (link) await link;
      return;
    }
    await this.dispatch(classified, portal, event, ctx);
  }

  private async dispatch(
    c: Exclude<Classified, { kind: "ignored" }>,
    portal: Portal,
    event: MatrixEvent,
    call: CallContext,
  ) {
    const a = this.o.adapter;
    switch (c.kind) {
      case "message":
        if (!a.onMessage) throw this.unsupported(c.kind);
        return this.linkIfGiven(portal, event.event_id, await a.onMessage(c.message, portal, call));
      case "edit":
        if (!a.onEdit) throw this.unsupported(c.kind);
        return a.onEdit(c.edit, portal, call);
      case "redaction":
        if (!a.onRedaction) throw this.unsupported(c.kind);
        return a.onRedaction(c.redaction, portal, call);
      case "reaction":
        if (!a.onReaction) throw this.unsupported(c.kind);
        return this.linkIfGiven(portal, event.event_id, await a.onReaction(c.reaction, portal, call));
      case "membership":
        return a.onMembership?.(c.membership, portal, call); // silence is fine: joins need no notice
      case "roomChange":
        return a.onRoomChange?.(c.change, portal, call);
    }
  }

  /** Typing and receipts: best effort, never retried, so failures are logged, not thrown. */
  async onEphemeral(events: EphemeralEvent[], call: CallContext): Promise<void> {
    await this.o.adapterReady?.();
    for (const event of events) {
      if (event.room_id === undefined) continue;
      try {
        if (event.type === "m.typing" && this.o.adapter.onTyping) {
          const portal = await this.o.portals.byRoomId(event.room_id);
          const ids = Array.isArray(event.content.user_ids) ? (event.content.user_ids as unknown[]) : [];
          const userIds = ids.filter(
            (u): u is string => typeof u === "string" && !this.o.matcher.mayActAs(u),
          );
          if (portal) await this.o.adapter.onTyping({ userIds }, portal, call);
        } else if (event.type === "m.receipt" && this.o.adapter.onReceipt) {
          const portal = await this.o.portals.byRoomId(event.room_id);
          if (portal)
            for (const receipt of await this.receipts(event))
              await this.o.adapter.onReceipt(receipt, portal, call);
        }
      } catch (err) {
        this.o.log.warn(
          { err, type: event.type, roomId: event.room_id },
          "ephemeral event not delivered to the adapter",
        );
      }
    }
  }

  private async receipts(event: EphemeralEvent): Promise<MatrixReceipt[]> {
    const out: MatrixReceipt[] = [];
    for (const [eventId, byType] of Object.entries(event.content)) {
      const read = (byType as Record<string, unknown> | null)?.["m.read"];
      if (typeof read !== "object" || read === null) continue;
      for (const [userId, info] of Object.entries(read as Record<string, { ts?: unknown }>)) {
        if (this.o.matcher.mayActAs(userId)) continue;
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
    return this.o.messages.link({ remoteRoomId: portal.remoteId, remoteId, roomId: portal.roomId, eventId });
  }

  /** The error for what the adapter cannot carry; its dead letter tells the sender. */
  private unsupported(kind: keyof typeof HANDLER_FOR): UnsupportedError {
    const what = { message: "messages", edit: "edits", redaction: "redactions", reaction: "reactions" }[
      kind as "message" | "edit" | "redaction" | "reaction"
    ];
    return new UnsupportedError(
      `the ${this.o.adapter.name} bridge cannot carry ${what} to the remote network`,
    );
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
