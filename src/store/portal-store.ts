import { assertJsonSize, type JsonValue } from "./json.js";
import { KeyedLock } from "./keyed-lock.js";
import type { KeyValue, Store } from "./store.js";

/** Adapter-defined metadata kept with a portal is at most this large (JSON, UTF-8). */
export const MAX_PORTAL_METADATA_BYTES = 16 * 1024;

/**
 * The key a portal is stored (and its outbox and message ids kept) under: the remote room id,
 * or for a login's DM portal, the remote room id and the login. Pure.
 */
export function portalKey(remoteId: string, login?: string): string {
  // U+001F (unit separator) never occurs in the ids adapters use, and a login's key can
  // never equal a shared portal's.
  return login === undefined ? remoteId : `${remoteId}\u001f${login}`;
}

export interface PortalRecord<M extends JsonValue = JsonValue> {
  remoteId: string;
  roomId: string;
  /** For a login's DM portal: the login it belongs to (part of the portal's key). */
  login?: string;
  /** The login that relays for senders without one of their own (`relay set`). */
  relay?: string;
  /** The room's canonical alias, e.g. `#irc_chan:example.org`. */
  alias?: string;
  /** "private" for an invite-only portal (PortalSpec.visibility): logins' users are invited. */
  visibility?: "private";
  /** Small adapter-defined data (at most MAX_PORTAL_METADATA_BYTES as JSON). */
  metadata?: M;
}

/**
 * Portals: remote room id (and, for DMs, login) <-> Matrix room id (+ alias, relay, small
 * metadata), looked up by any of them. The record keyed by portalKey is the source of truth; the room-id and alias
 * indexes are written before it and checked against it on read, so a crash mid-write reads
 * as "no portal", never a wrong one. Single writer process assumed.
 */
export class PortalStore<M extends JsonValue = JsonValue> {
  /** Serialises writes in this process, so two links cannot both pass the checks. */
  private readonly writes = new KeyedLock();
  private readonly byRemote: KeyValue<PortalRecord<M>>;
  private readonly byRoom: KeyValue<string>;
  private readonly byAlias: KeyValue<string>;

  constructor(store: Store, namespace = "portals") {
    this.byRemote = store.namespace<PortalRecord<M>>(namespace);
    this.byRoom = store.namespace<string>(`${namespace}.by-room`);
    this.byAlias = store.namespace<string>(`${namespace}.by-alias`);
  }

  /**
   * Links a remote room to a Matrix room. Throws if the remote room or the Matrix room is
   * already linked elsewhere (unlink first, e.g. after a room upgrade), or if the metadata is
   * too large. Linking the same pair again updates alias and metadata.
   */
  link(portal: PortalRecord<M>): Promise<PortalRecord<M>> {
    return this.writes.run("write", async () => {
      if (portal.metadata !== undefined)
        assertJsonSize(`portal ${portal.remoteId} metadata`, portal.metadata, MAX_PORTAL_METADATA_BYTES);
      const key = portalKey(portal.remoteId, portal.login);
      const existing = await this.byRemote.get(key);
      if (existing && existing.roomId !== portal.roomId)
        throw new Error(
          `portal ${describe(portal)} is already linked to ${existing.roomId}, not ${portal.roomId}`,
        );
      const other = await this.getByRoomId(portal.roomId);
      if (other && portalKey(other.remoteId, other.login) !== key)
        throw new Error(
          `room ${portal.roomId} is already the portal of ${describe(other)}, not ${describe(portal)}`,
        );
      if (portal.alias !== undefined) {
        const aliasOwner = await this.getByAlias(portal.alias);
        if (aliasOwner && portalKey(aliasOwner.remoteId, aliasOwner.login) !== key)
          throw new Error(`alias ${portal.alias} already names the portal of ${describe(aliasOwner)}`);
      }
      const record: PortalRecord<M> = { remoteId: portal.remoteId, roomId: portal.roomId };
      if (portal.login !== undefined) record.login = portal.login;
      if (portal.relay !== undefined) record.relay = portal.relay;
      if (portal.alias !== undefined) record.alias = portal.alias;
      if (portal.visibility !== undefined) record.visibility = portal.visibility;
      if (portal.metadata !== undefined) record.metadata = portal.metadata;
      await this.byRoom.set(record.roomId, key);
      if (record.alias !== undefined) await this.byAlias.set(record.alias, key);
      await this.byRemote.set(key, record);
      if (existing?.alias !== undefined && existing.alias !== record.alias)
        await this.byAlias.delete(existing.alias);
      return record;
    });
  }

  /** Replaces a linked portal's metadata. Throws if there is no such portal or it is too large. */
  setMetadata(remoteId: string, metadata: M, login?: string): Promise<void> {
    return this.update(remoteId, login, (record) => {
      assertJsonSize(`portal ${remoteId} metadata`, metadata, MAX_PORTAL_METADATA_BYTES);
      return { ...record, metadata };
    });
  }

  /** Sets (or, with undefined, clears) the login relaying in a portal. Throws if there is no such portal. */
  setRelay(remoteId: string, login: string | undefined, relay: string | undefined): Promise<void> {
    return this.update(remoteId, login, (record) => {
      const next = { ...record };
      if (relay === undefined) delete next.relay;
      else next.relay = relay;
      return next;
    });
  }

  /**
   * Moves a linked portal to another Matrix room (its room was upgraded): relay, alias and
   * metadata stay. Throws if there is no such portal or the new room is another's portal.
   * Returns the moved record.
   */
  move(remoteId: string, login: string | undefined, roomId: string): Promise<PortalRecord<M>> {
    return this.writes.run("write", async () => {
      const key = portalKey(remoteId, login);
      const record = await this.byRemote.get(key);
      if (!record) throw new Error(`portal ${describe({ remoteId, login })} is not linked`);
      const other = await this.getByRoomId(roomId);
      if (other && portalKey(other.remoteId, other.login) !== key)
        throw new Error(
          `room ${roomId} is already the portal of ${describe(other)}, not ${describe(record)}`,
        );
      const moved = { ...record, roomId };
      await this.byRoom.set(roomId, key);
      await this.byRemote.set(key, moved);
      if (record.roomId !== roomId) await this.byRoom.delete(record.roomId);
      return moved;
    });
  }

  /** The portal of a remote room (a shared one, or with `login`, that login's DM portal). */
  async getByRemoteId(remoteId: string, login?: string): Promise<PortalRecord<M> | undefined> {
    return this.byRemote.get(portalKey(remoteId, login));
  }

  async getByRoomId(roomId: string): Promise<PortalRecord<M> | undefined> {
    const key = await this.byRoom.get(roomId);
    if (key === undefined) return undefined;
    const record = await this.byRemote.get(key);
    return record?.roomId === roomId ? record : undefined;
  }

  async getByAlias(alias: string): Promise<PortalRecord<M> | undefined> {
    const key = await this.byAlias.get(alias);
    if (key === undefined) return undefined;
    const record = await this.byRemote.get(key);
    return record?.alias === alias ? record : undefined;
  }

  /** Forgets a portal (all three lookups); returns true if it was linked. */
  unlink(remoteId: string, login?: string): Promise<boolean> {
    return this.writes.run("write", async () => {
      const key = portalKey(remoteId, login);
      const record = await this.byRemote.get(key);
      if (!record) return false;
      await this.byRemote.delete(key);
      await this.byRoom.delete(record.roomId);
      if (record.alias !== undefined) await this.byAlias.delete(record.alias);
      return true;
    });
  }

  private update(
    remoteId: string,
    login: string | undefined,
    change: (record: PortalRecord<M>) => PortalRecord<M>,
  ): Promise<void> {
    return this.writes.run("write", async () => {
      const key = portalKey(remoteId, login);
      const record = await this.byRemote.get(key);
      if (!record) throw new Error(`portal ${describe({ remoteId, login })} is not linked`);
      await this.byRemote.set(key, change(record));
    });
  }
}

/** How errors name a portal: its remote id, and its login for a DM portal. */
function describe(p: { remoteId: string; login?: string | undefined }): string {
  return p.login === undefined ? p.remoteId : `${p.remoteId} (DM of login ${p.login})`;
}
