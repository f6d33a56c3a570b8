import type { MessageContent, RemoteNetworkAdapter } from "../adapter/adapter.js";
import type { HomeserverClient } from "../client/homeserver-client.js";
import type { Intent } from "../client/intent.js";
import type { Logger } from "../common/logger.js";
import type { Avatars } from "../media/avatars.js";
import { withMedia, type SpooledMedia } from "../media/media-content.js";
import type { MediaUploads } from "../media/uploads.js";
import type { MessageMap } from "../store/message-map.js";
import type { OutboxItem } from "../store/outbox.js";
import type { JsonValue } from "../store/json.js";
import { editContent, messageContent, reactionContent } from "./adapter-to-matrix.js";
import type { PillTarget } from "../formatting/add-pills.js";
import type { Ghosts } from "./ghosts.js";
import type { OutboxAction, ProfileAction } from "./outbox-payload.js";
import { DeliverLater, isPermanent } from "./outbox-worker.js";
import { keyOf, type Portals } from "./portals.js";
import type { BridgeInfo } from "../rooms/bridge-info.js";

/** An action whose target the bridge never saw; it cannot succeed on a retry. */
export class UnknownTargetError extends TypeError {
  override readonly name = "UnknownTargetError";
}

/**
 * Performs one outbox action on the homeserver. Every send uses the item's txnId, so a
 * delivery repeated after a crash is deduplicated by the homeserver. Resolves only once the
 * homeserver accepted the action and any message-id link was stored.
 */
/** Who sends a message event: a ghost's Intent, or a real user's double puppet. */
export type Sender = Pick<Intent, "sendEvent" | "redact">;

/** What delivery tells backfill (src/backfill), and asks it. Set by the Bridge when backfill is on. */
export interface DeliveryHistory {
  /** A fill of the portal key waits to run. Must not do I/O. */
  isPending(key: string): boolean;
  /** A message with a remote id reached the portal (its remote time, or when it was queued). */
  delivered(key: string, remoteId: string, ts: number): Promise<void>;
}

export class RemoteDelivery {
  /**
   * With backfill on: a send whose remote id the portal already has is skipped (history and
   * live overlap), the anchor follows what is delivered, and a portal made on demand lets its
   * history go first.
   */
  history: DeliveryHistory | undefined = undefined;

  /**
   * The double puppet of the user behind a login, for what their session sends from their
   * own account; undefined (or no puppet) sends as the ghost. Set by the Bridge.
   */
  asUser: ((loginId: string) => Promise<Sender | undefined>) | undefined = undefined;
  /** Updates a portal's bridge info when its name or avatar changed. Set by the Bridge. */
  bridgeInfo: BridgeInfo | undefined = undefined;

  constructor(
    private readonly client: HomeserverClient,
    private readonly adapter: RemoteNetworkAdapter,
    private readonly portals: Portals,
    private readonly ghosts: Ghosts,
    private readonly messages: MessageMap,
    private readonly log: Logger,
    private readonly uploads: MediaUploads,
    private readonly avatars: Pick<Avatars, "mxcFor">,
  ) {}

  async deliver(item: OutboxItem<JsonValue>): Promise<void> {
    try {
      await this.perform(item);
    } catch (err) {
      // A dead letter's file would stay in the spool for ever: it goes with the item.
      const a = item.payload as unknown as OutboxAction;
      if ((a.op === "send" || a.op === "edit") && a.media && isPermanent(err))
        await this.uploads.forget(item.txnId, a.media);
      throw err;
    }
  }

  private async perform(item: OutboxItem<JsonValue>): Promise<void> {
    const a = item.payload as unknown as OutboxAction;
    const known = await this.portals.get(a.room, a.dm ? a.login : undefined);
    const portal =
      known ?? (!a.dm && this.adapter.createPortalsOnDemand ? await this.portals.ensure(a.room) : undefined);
    if (!portal) throw new UnknownTargetError(`remote room "${a.room}" has no portal`);
    const roomId = portal.roomId;
    // Message ids are kept per portal: a login's DM and the shared room never mix theirs.
    const room = keyOf(portal);
    if (!known && this.history?.isPending(room))
      throw new DeliverLater(`the new portal of "${a.room}" sends its history first`);
    if (a.op === "send" && a.remoteId !== undefined && this.history) {
      if (await this.messages.byRemoteId(room, a.remoteId)) {
        this.log.debug(
          { room, remoteId: a.remoteId, backfill: a.backfill },
          "remote message already bridged; skipped",
        );
        if (a.media) await this.uploads.forget(item.txnId, a.media);
        return;
      }
    }
    const actor: Intent =
      a.from !== undefined ? await this.ghosts.ensure(a.from) : this.client.intent(this.client.botUserId);
    const ts = a.ts !== undefined ? { ts: a.ts } : {};
    // The user's own account wrote it (from another client): as the user, when double puppeting works.
    const puppet =
      a.login !== undefined &&
      a.from === a.login &&
      a.op !== "join" &&
      a.op !== "leave" &&
      a.op !== "roomInfo"
        ? await this.asUser?.(a.login)
        : undefined;
    const sender = puppet ? this.falling(puppet, actor, roomId) : actor;

    switch (a.op) {
      case "send": {
        const reply = a.replyTo !== undefined ? await this.messages.byRemoteId(room, a.replyTo) : undefined;
        if (a.replyTo !== undefined && !reply)
          this.log.debug({ room, replyTo: a.replyTo }, "reply target unknown; sent as a plain message");
        const root = a.thread !== undefined ? await this.messages.byRemoteId(room, a.thread) : undefined;
        if (a.thread !== undefined && !root)
          this.log.debug({ room, thread: a.thread }, "thread root unknown; sent outside a thread");
        const mentioned = typeof a.content === "string" ? undefined : a.content.mentions;
        const content = messageContent(await this.withMedia(a, item.txnId, actor), {
          ...(a.externalUrl !== undefined ? { externalUrl: a.externalUrl } : {}),
          ...(reply ? { replyToEventId: reply.eventId } : {}),
          ...(root ? { threadRootEventId: root.eventId } : {}),
          ...(mentioned !== undefined && mentioned.length > 0
            ? { mentions: await this.pillTargets(mentioned) }
            : {}),
        });
        const eventId = await sender.sendEvent(roomId, "m.room.message", content, {
          ...ts,
          txnId: item.txnId,
        });
        if (a.media) await this.uploads.forget(item.txnId, a.media);
        if (a.remoteId !== undefined) {
          await this.messages.link({ remoteRoomId: room, remoteId: a.remoteId, roomId, eventId });
          await this.history?.delivered(room, a.remoteId, a.ts ?? item.enqueuedAt);
        }
        return;
      }
      case "edit": {
        const target = await this.target(room, a.target);
        const content = editContent(
          await this.withMedia(a, item.txnId, actor),
          target,
          a.externalUrl !== undefined ? { externalUrl: a.externalUrl } : {},
        );
        await sender.sendEvent(roomId, "m.room.message", content, { ...ts, txnId: item.txnId });
        if (a.media) await this.uploads.forget(item.txnId, a.media);
        return;
      }
      case "redact": {
        const target = await this.target(room, a.target);
        await sender.redact(roomId, target, {
          ...(a.reason !== undefined ? { reason: a.reason } : {}),
          txnId: item.txnId,
        });
        return;
      }
      case "react": {
        const target = await this.target(room, a.target);
        const eventId = await sender.sendEvent(roomId, "m.reaction", reactionContent(target, a.key), {
          ...ts,
          txnId: item.txnId,
        });
        if (a.remoteId !== undefined)
          await this.messages.link({ remoteRoomId: room, remoteId: a.remoteId, roomId, eventId });
        return;
      }
      case "join":
        await actor.ensureJoined(roomId);
        if (a.from !== undefined) await this.portals.admit(portal, [a.from]);
        return;
      case "leave":
        await actor.leave(roomId, a.reason);
        return;
      case "roomInfo": {
        const sets: Array<[string, Record<string, unknown>]> = [];
        if (a.info.name !== undefined) sets.push(["m.room.name", { name: a.info.name }]);
        if (a.info.topic !== undefined) sets.push(["m.room.topic", { topic: a.info.topic }]);
        if (a.info.avatarUrl !== undefined) {
          const url = await this.avatars.mxcFor(a.info.avatarUrl, actor.userId);
          if (url !== undefined) sets.push(["m.room.avatar", { url }]);
        }
        for (const [type, content] of sets) await this.setState(actor, roomId, type, content, a.ts);
        if (a.info.name !== undefined || a.info.avatarUrl !== undefined)
          await this.bridgeInfo?.refresh(roomId, portal.remoteId);
        return;
      }
    }
  }

  /**
   * The message content, with its attachment and its thumbnail uploaded (once per item) as the
   * acting ghost or bot.
   */
  private async withMedia(
    a: { content: MessageContent; media?: SpooledMedia },
    txnId: string,
    actor: Intent,
  ): Promise<MessageContent> {
    if (!a.media) return a.content;
    const mxc = await this.uploads.mxcFor(txnId, a.media, actor.userId);
    const thumbnailMxc = await this.uploads.thumbnailMxcFor(txnId, a.media, actor.userId);
    return withMedia(a.content, a.media, mxc, thumbnailMxc);
  }

  /** Mentioned remote users as ghosts, named by their display name as last set and their remote id. */
  private async pillTargets(remoteIds: string[]): Promise<PillTarget[]> {
    const out: PillTarget[] = [];
    for (const remoteId of new Set(remoteIds)) {
      const name = await this.ghosts.displayName(remoteId);
      out.push({ userId: this.ghosts.userId(remoteId), names: name ? [name, remoteId] : [remoteId] });
    }
    return out;
  }

  /** A puppet that hands over to the ghost when the user is not in the room (403). */
  private falling(puppet: Sender, ghost: Sender, roomId: string): Sender {
    const fallBack = <T>(err: unknown, again: () => Promise<T>): Promise<T> => {
      if ((err as { status?: number }).status !== 403) throw err;
      this.log.info({ roomId }, "the double puppet may not send here; sending as the ghost");
      return again();
    };
    return {
      sendEvent: (...args) =>
        puppet.sendEvent(...args).catch((err: unknown) => fallBack(err, () => ghost.sendEvent(...args))),
      redact: (...args) =>
        puppet.redact(...args).catch((err: unknown) => fallBack(err, () => ghost.redact(...args))),
    };
  }

  async deliverProfile(item: OutboxItem<JsonValue>): Promise<void> {
    const p = item.payload as unknown as ProfileAction;
    await this.ghosts.applyProfile(p.user, p.profile);
  }

  /** A ghost may lack the power to change room state; the bot then does it for them. */
  private async setState(
    actor: Intent,
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    ts?: number,
  ) {
    const opts = ts !== undefined ? { ts } : {};
    try {
      await actor.sendState(roomId, type, "", content, opts);
    } catch (err) {
      if (actor.isBot || (err as { status?: number }).status !== 403) throw err;
      await this.client.intent(this.client.botUserId).sendState(roomId, type, "", content, opts);
    }
  }

  private async target(room: string, remoteId: string): Promise<string> {
    const link = await this.messages.byRemoteId(room, remoteId);
    if (!link)
      throw new UnknownTargetError(`no Matrix event is known for remote message "${remoteId}" in "${room}"`);
    return link.eventId;
  }
}
