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
import type { Avatars } from "../media/avatars.js";
import type { IdTemplate } from "../registration/localpart.js";
import type { BridgeInfo } from "../rooms/bridge-info.js";
import type { InitialStateEvent } from "../client/types.js";
import { portalKey, type PortalRecord, type PortalStore } from "../store/portal-store.js";
import type { Ghosts } from "./ghosts.js";

/** The signal of a call made outside any request: nothing times it out. */
const NEVER_ABORTED = new AbortController().signal;

function toPortal(record: PortalRecord): Portal {
  const portal: Portal = { remoteId: record.remoteId, roomId: record.roomId };
  if (record.alias !== undefined) portal.alias = record.alias;
  if (record.login !== undefined) portal.login = record.login;
  if (record.relay !== undefined) portal.relay = record.relay;
  if (record.visibility !== undefined) portal.visibility = record.visibility;
  return portal;
}

/** The store key of a portal (see portalKey): what its outbox lane and message ids are kept under. */
export function keyOf(portal: Pick<Portal, "remoteId" | "login">): string {
  return portalKey(portal.remoteId, portal.login);
}

/** Whose DM portal is being made: the login, and the Matrix user to invite. */
export interface DmOwner {
  login: string;
  userId: string;
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
  /** By portalKey. */
  private readonly byKey = new LRUCache<string, Portal | "none">({ max: 10_000 });
  /**
   * Called once a login's DM portal was made (the user is invited): joins them by double
   * puppet when they have one. Set by the Bridge; failures are its own to log.
   */
  onDmCreated: ((login: string, roomId: string) => Promise<void>) | undefined = undefined;
  /**
   * Invites the Matrix users of the logins among these remote ids to a portal (see `admit`).
   * Set by the Bridge when the adapter has logins.
   */
  inviteLogins: ((portal: Portal, remoteIds: readonly string[]) => Promise<void>) | undefined = undefined;
  /**
   * Called once a portal was made (`login`: a DM portal's) or a login's session used one
   * (`usedBy`): puts it in its space. Set by the Bridge with config bridge.spaces.
   */
  onPortalFor: ((portal: Portal, login: string | undefined) => Promise<void>) | undefined = undefined;
  /** Puts bridge info (m.bridge) in the initial state of the rooms made. Set by the Bridge. */
  bridgeInfo: BridgeInfo | undefined = undefined;

  /**
   * Called once any portal was made (after its members joined), before `ensure` resolves:
   * backfill records its history request here. Set by the Bridge; must not reject.
   */
  onCreated: ((portal: Portal) => Promise<void>) | undefined = undefined;

  constructor(
    private readonly template: IdTemplate | undefined,
    private readonly client: HomeserverClient,
    private readonly store: PortalStore,
    private readonly ghosts: Ghosts,
    private readonly adapter: RemoteNetworkAdapter,
    private readonly log: Logger,
    private readonly avatars: Pick<Avatars, "mxcFor">,
  ) {}

  /** The shared portal of a remote room, or with `login`, that login's DM portal. */
  async get(remoteId: string, login?: string): Promise<Portal | null> {
    const key = portalKey(remoteId, login);
    const cached = this.byKey.get(key);
    if (cached !== undefined) return cached === "none" ? null : cached;
    const record = await this.store.getByRemoteId(remoteId, login);
    const portal = record ? toPortal(record) : null;
    this.byKey.set(key, portal ?? "none");
    return portal;
  }

  /**
   * Links a Matrix room that exists already (`bridge <remote room>`, a DM the user opened by
   * inviting a ghost) as the portal of a remote room. Throws if either side is linked.
   */
  async adopt(record: { remoteId: string; roomId: string; login?: string }): Promise<Portal> {
    const linked = await this.store.link(record);
    return this.remember(linked);
  }

  /** Forgets a portal; the Matrix room stays, no longer bridged. Returns true if it was linked. */
  async unlink(portal: Portal): Promise<boolean> {
    const removed = await this.store.unlink(portal.remoteId, portal.login);
    this.byKey.set(keyOf(portal), "none");
    this.byRoom.set(portal.roomId, "none");
    return removed;
  }

  /** Moves a portal to its upgraded room; the old room is no portal any more. */
  async move(portal: Portal, roomId: string): Promise<Portal> {
    const moved = this.remember(await this.store.move(portal.remoteId, portal.login, roomId));
    this.byRoom.set(portal.roomId, "none");
    return moved;
  }

  /**
   * Remote users gained access to a portal (its members at creation, a login's session
   * ensuring it, a `ctx.join`): in a private portal, those who are logins get their Matrix
   * user invited, since nobody can join it uninvited.
   */
  async admit(portal: Portal, remoteIds: readonly string[]): Promise<void> {
    if (portal.visibility === "private" && remoteIds.length > 0) await this.inviteLogins?.(portal, remoteIds);
  }

  /** A login's session ensured a shared portal: in a private one its user is invited; it goes in the login's space. */
  async usedBy(portal: Portal, login: string): Promise<void> {
    await this.admit(portal, [login]);
    await this.onPortalFor?.(portal, login);
  }

  /** Sets or clears the login relaying in a portal. */
  async setRelay(portal: Portal, relay: string | undefined): Promise<Portal> {
    await this.store.setRelay(portal.remoteId, portal.login, relay);
    const next: Portal = { ...portal };
    if (relay === undefined) delete next.relay;
    else next.relay = relay;
    this.byKey.set(keyOf(next), next);
    this.byRoom.set(next.roomId, next);
    return next;
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

  /**
   * The portal, made if needed. With `owner` (and spec.direct), that login's DM portal: a
   * private room its user is invited to as a direct chat.
   */
  async ensure(remoteId: string, spec?: PortalSpec, owner?: DmOwner): Promise<Portal> {
    const existing = await this.get(remoteId, owner?.login);
    if (existing) return existing;
    const key = portalKey(remoteId, owner?.login);
    let pending = this.creating.get(key);
    if (!pending) {
      pending = (owner ? this.createDm(remoteId, spec ?? {}, owner) : this.create(remoteId, spec)).finally(
        () => this.creating.delete(key),
      );
      this.creating.set(key, pending);
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
    const initialState = await this.initialState(remoteId, spec);
    let roomId: string;
    try {
      roomId = await bot.createRoom({
        ...(localpart !== undefined ? { room_alias_name: localpart } : {}),
        ...(spec.name !== undefined ? { name: spec.name } : {}),
        ...(spec.topic !== undefined ? { topic: spec.topic } : {}),
        preset: spec.visibility === "private" ? "private_chat" : "public_chat",
        visibility: "private", // the server-wide directory; the per-network one is below
        power_level_content_override: { users: { [this.client.botUserId]: 100 } },
        initial_state: initialState,
      });
    } catch (err) {
      // Someone (an earlier run that crashed before linking) made the alias already: adopt it.
      if (!(err instanceof MatrixError) || err.errcode !== "M_ROOM_IN_USE" || alias === undefined) throw err;
      const resolved = await this.client.resolveAlias(alias);
      if (!resolved) throw err;
      roomId = resolved.roomId;
      await bot.ensureJoined(roomId);
      // The initial state the crashed run may not have set: the avatar and the bridge info.
      for (const e of initialState) await bot.sendState(roomId, e.type, e.state_key ?? "", e.content);
    }
    const record: PortalRecord = { remoteId, roomId };
    if (alias !== undefined) record.alias = alias;
    if (spec.visibility === "private") record.visibility = "private";
    const portal = this.remember(await this.store.link(record));
    this.log.info({ remoteId, roomId, alias }, "portal created");
    if (spec.publishToDirectory)
      await this.client.setRoomDirectoryVisibility(this.adapter.name, roomId, "public");
    await this.joinMembers(roomId, spec);
    await this.admit(portal, spec.members ?? []);
    await this.onPortalFor?.(portal, undefined);
    await this.onCreated?.(portal);
    return portal;
  }

  /** A login's DM portal: private, its user invited as to a direct chat, the other side joined. */
  private async createDm(remoteId: string, spec: PortalSpec, owner: DmOwner): Promise<Portal> {
    const bot = this.client.intent(this.client.botUserId);
    const roomId = await bot.createRoom({
      ...(spec.name !== undefined ? { name: spec.name } : {}),
      ...(spec.topic !== undefined ? { topic: spec.topic } : {}),
      preset: "trusted_private_chat",
      visibility: "private",
      is_direct: true,
      invite: [owner.userId],
      power_level_content_override: { users: { [this.client.botUserId]: 100, [owner.userId]: 100 } },
      initial_state: await this.initialState(remoteId, spec, owner.userId),
    });
    const portal = this.remember(await this.store.link({ remoteId, roomId, login: owner.login }));
    this.log.info({ remoteId, roomId, login: owner.login }, "DM portal created");
    await this.joinMembers(roomId, spec);
    await this.onDmCreated?.(owner.login, roomId);
    await this.onPortalFor?.(portal, owner.login);
    await this.onCreated?.(portal);
    return portal;
  }

  /** The avatar (uploaded once) and the bridge info, set as the room is made. */
  private async initialState(
    remoteId: string,
    spec: PortalSpec,
    creator?: string,
  ): Promise<InitialStateEvent[]> {
    const state: InitialStateEvent[] = [];
    const avatar =
      spec.avatarUrl !== undefined && spec.avatarUrl !== ""
        ? await this.avatars.mxcFor(spec.avatarUrl, this.client.botUserId)
        : undefined;
    if (avatar !== undefined) state.push({ type: "m.room.avatar", state_key: "", content: { url: avatar } });
    const info = await this.bridgeInfo?.initialState({
      remoteId,
      ...(spec.name !== undefined ? { name: spec.name } : {}),
      ...(avatar !== undefined ? { avatarMxc: avatar } : {}),
      ...(creator !== undefined ? { creator } : {}),
    });
    return [...state, ...(info ?? [])];
  }

  private async joinMembers(roomId: string, spec: PortalSpec): Promise<void> {
    for (const member of spec.members ?? []) {
      const ghost = await this.ghosts.ensure(member);
      await ghost.ensureJoined(roomId);
    }
  }

  private remember(record: PortalRecord): Portal {
    const portal = toPortal(record);
    this.byRoom.set(portal.roomId, portal);
    this.byKey.set(keyOf(portal), portal);
    return portal;
  }
}
