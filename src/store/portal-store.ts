import { assertJsonSize, type JsonValue } from "./json.js";
import { KeyedLock } from "./keyed-lock.js";
import type { KeyValue, Store } from "./store.js";

/** Adapter-defined metadata kept with a portal is at most this large (JSON, UTF-8). */
export const MAX_PORTAL_METADATA_BYTES = 16 * 1024;

export interface PortalRecord<M extends JsonValue = JsonValue> {
  remoteId: string;
  roomId: string;
  /** The room's canonical alias, e.g. `#irc_chan:example.org`. */
  alias?: string;
  /** Small adapter-defined data (at most MAX_PORTAL_METADATA_BYTES as JSON). */
  metadata?: M;
}

/**
 * Portals: remote room id <-> Matrix room id (+ alias, + small metadata), looked up by any
 * of the three. The record keyed by remote id is the source of truth; the room-id and alias
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
      const existing = await this.getByRemoteId(portal.remoteId);
      if (existing && existing.roomId !== portal.roomId)
        throw new Error(
          `portal ${portal.remoteId} is already linked to ${existing.roomId}, not ${portal.roomId}`,
        );
      const other = await this.getByRoomId(portal.roomId);
      if (other && other.remoteId !== portal.remoteId)
        throw new Error(
          `room ${portal.roomId} is already the portal of ${other.remoteId}, not ${portal.remoteId}`,
        );
      if (portal.alias !== undefined) {
        const aliasOwner = await this.getByAlias(portal.alias);
        if (aliasOwner && aliasOwner.remoteId !== portal.remoteId)
          throw new Error(`alias ${portal.alias} already names the portal of ${aliasOwner.remoteId}`);
      }
      const record: PortalRecord<M> = { remoteId: portal.remoteId, roomId: portal.roomId };
      if (portal.alias !== undefined) record.alias = portal.alias;
      if (portal.metadata !== undefined) record.metadata = portal.metadata;
      await this.byRoom.set(record.roomId, record.remoteId);
      if (record.alias !== undefined) await this.byAlias.set(record.alias, record.remoteId);
      await this.byRemote.set(record.remoteId, record);
      if (existing?.alias !== undefined && existing.alias !== record.alias)
        await this.byAlias.delete(existing.alias);
      return record;
    });
  }

  /** Replaces a linked portal's metadata. Throws if there is no such portal or it is too large. */
  setMetadata(remoteId: string, metadata: M): Promise<void> {
    return this.writes.run("write", async () => {
      assertJsonSize(`portal ${remoteId} metadata`, metadata, MAX_PORTAL_METADATA_BYTES);
      const record = await this.getByRemoteId(remoteId);
      if (!record) throw new Error(`portal ${remoteId} is not linked`);
      await this.byRemote.set(remoteId, { ...record, metadata });
    });
  }

  async getByRemoteId(remoteId: string): Promise<PortalRecord<M> | undefined> {
    return this.byRemote.get(remoteId);
  }

  async getByRoomId(roomId: string): Promise<PortalRecord<M> | undefined> {
    const remoteId = await this.byRoom.get(roomId);
    if (remoteId === undefined) return undefined;
    const record = await this.byRemote.get(remoteId);
    return record?.roomId === roomId ? record : undefined;
  }

  async getByAlias(alias: string): Promise<PortalRecord<M> | undefined> {
    const remoteId = await this.byAlias.get(alias);
    if (remoteId === undefined) return undefined;
    const record = await this.byRemote.get(remoteId);
    return record?.alias === alias ? record : undefined;
  }

  /** Forgets a portal (all three lookups); returns true if it was linked. */
  unlink(remoteId: string): Promise<boolean> {
    return this.writes.run("write", async () => {
      const record = await this.getByRemoteId(remoteId);
      if (!record) return false;
      await this.byRemote.delete(remoteId);
      await this.byRoom.delete(record.roomId);
      if (record.alias !== undefined) await this.byAlias.delete(record.alias);
      return true;
    });
  }
}
