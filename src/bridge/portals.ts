import { LRUCache } from "lru-cache";
import type {
  CallContext,
  Portal,
  PortalDirectory,
  PortalSpec,
  RemoteNetworkAdapter,
} from "../adapter/adapter.js";
import type { HomeserverClient } from "../client/homeserver-client.js";
import { MatrixError } from "../client/matrix-error.js";
import type { Logger } from "../common/logger.js";
import type { IdTemplate } from "../registration/localpart.js";
import type { PortalRecord, PortalStore } from "../store/portal-store.js";
import type { Ghosts } from "./ghosts.js";

/** The signal of a call made outside any request: nothing times it out. */
const NEVER_ABORTED = new AbortController().signal;

function toPortal(record: PortalRecord): Portal {
  const portal: Portal = { remoteId: record.remoteId, roomId: record.roomId };
  if (record.alias !== undefined) portal.alias = record.alias;
  return portal;
}

/**
 * Remote rooms as Matrix rooms. A portal is created by the bot with the alias from the
 * portal template, on an alias query or on demand; concurrent requests for one remote room
 * share one creation.
 */
export class Portals implements PortalDirectory {
  /** Creations in flight, by remote id; entries leave when they settle, so this stays small. */
  private readonly creating = new Map<string, Promise<Portal>>();
  /**
   * Portals (or "none") by room id and by remote id, so routing an event or queueing a send
   * costs no store read. Safe because this process is the portal store's only writer (one
   * bridge per store) and every portal it creates is put in both.
   */
  private readonly byRoom = new LRUCache<string, Portal | "none">({ max: 10_000 });
  private readonly byRemote = new LRUCache<string, Portal | "none">({ max: 10_000 });

  constructor(
    private readonly template: IdTemplate | undefined,
    private readonly client: HomeserverClient,
    private readonly store: PortalStore,
    private readonly ghosts: Ghosts,
    private readonly adapter: RemoteNetworkAdapter,
    private readonly log: Logger,
  ) {}

  async get(remoteId: string): Promise<Portal | null> {
    const cached = this.byRemote.get(remoteId);
    if (cached !== undefined) return cached === "none" ? null : cached;
    const record = await this.store.getByRemoteId(remoteId);
    const portal = record ? toPortal(record) : null;
    this.byRemote.set(remoteId, portal ?? "none");
    return portal;
  }

  /**
   * The portal of a Matrix room if the cache knows the answer: the portal, null for "not a
   * portal", undefined for "not cached" (then ask `byRoomId`). Must not do I/O.
   */
  cachedByRoomId(roomId: string): Portal | null | undefined {
    const cached = this.byRoom.get(roomId);
    return cached === "none" ? null : cached;
  }

  async byRoomId(roomId: string): Promise<Portal | null> {
    const cached = this.byRoom.get(roomId);
    if (cached !== undefined) return cached === "none" ? null : cached;
    const record = await this.store.getByRoomId(roomId);
    const portal = record ? toPortal(record) : null;
    this.byRoom.set(roomId, portal ?? "none");
    return portal;
  }

  aliasFor(remoteId: string): string {
    if (!this.template) throw new Error("this bridge has no portal template (config bridge.portals)");
    return this.template.alias(remoteId);
  }

  /** The remote room an alias in the portal namespace names, or null. Must not do I/O. */
  remoteIdOfAlias(alias: string): string | null {
    return this.template?.parseAlias(alias) ?? null;
  }

  async ensure(remoteId: string, spec?: PortalSpec): Promise<Portal> {
    const existing = await this.get(remoteId);
    if (existing) return existing;
    let pending = this.creating.get(remoteId);
    if (!pending) {
      pending = this.create(remoteId, spec).finally(() => this.creating.delete(remoteId));
      this.creating.set(remoteId, pending);
    }
    return pending;
  }

  /**
   * Answers the homeserver's alias query: asks the adapter whether the remote room exists
   * and, if so, creates the portal before answering true.
   */
  async queryAlias(alias: string, call: CallContext): Promise<boolean> {
    const remoteId = this.remoteIdOfAlias(alias);
    if (remoteId === null || !this.adapter.queryRoom) return false;
    if (await this.get(remoteId)) return true;
    const spec = await this.adapter.queryRoom(remoteId, call);
    if (!spec) return false;
    await this.ensure(remoteId, spec);
    return true;
  }

  private async create(remoteId: string, given?: PortalSpec): Promise<Portal> {
    // Not within a homeserver request: the call has no deadline of its own.
    const call = { signal: NEVER_ABORTED, log: this.log.child({ remoteRoomId: remoteId }) };
    const spec = given ?? (await this.adapter.queryRoom?.(remoteId, call)) ?? {};
    const bot = this.client.intent(this.client.botUserId);
    const alias = this.template?.alias(remoteId);
    const localpart = this.template?.localpart(remoteId);
    let roomId: string;
    try {
      roomId = await bot.createRoom({
        ...(localpart !== undefined ? { room_alias_name: localpart } : {}),
        ...(spec.name !== undefined ? { name: spec.name } : {}),
        ...(spec.topic !== undefined ? { topic: spec.topic } : {}),
        preset: spec.visibility === "private" ? "private_chat" : "public_chat",
        visibility: "private", // the server-wide directory; the per-network one is below
        power_level_content_override: { users: { [this.client.botUserId]: 100 } },
      });
    } catch (err) {
      // Someone (an earlier run that crashed before linking) made the alias already: adopt it.
      if (!(err instanceof MatrixError) || err.errcode !== "M_ROOM_IN_USE" || alias === undefined) throw err;
      const resolved = await this.client.resolveAlias(alias);
      if (!resolved) throw err;
      roomId = resolved.roomId;
      await bot.ensureJoined(roomId);
    }
    const record: PortalRecord = { remoteId, roomId };
    if (alias !== undefined) record.alias = alias;
    await this.store.link(record);
    this.byRoom.set(roomId, toPortal(record));
    this.byRemote.set(remoteId, toPortal(record));
    this.log.info({ remoteId, roomId, alias }, "portal created");
    if (spec.publishToDirectory)
      await this.client.setRoomDirectoryVisibility(this.adapter.name, roomId, "public");
    if (spec.avatarUrl?.startsWith("mxc://"))
      await bot.sendState(roomId, "m.room.avatar", "", { url: spec.avatarUrl });
    for (const member of spec.members ?? []) {
      const ghost = await this.ghosts.ensure(member);
      await ghost.ensureJoined(roomId);
    }
    return toPortal(record);
  }
}
