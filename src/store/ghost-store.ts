import { KeyedLock } from "./keyed-lock.js";
import type { KeyValue, Store } from "./store.js";

/** A ghost's profile as last set on Matrix. Absent fields were never set by the bridge. */
export interface GhostProfile {
  /** null: cleared. */
  displayname?: string | null;
  /** An mxc:// URL; null: cleared. */
  avatarUrl?: string | null;
}

export interface GhostRecord {
  remoteId: string;
  userId: string;
  profile: GhostProfile;
}

/**
 * Ghosts: remote user id <-> Matrix user id, and the profile last set for each, so an
 * unchanged profile is not sent again. The record keyed by remote id is the source of
 * truth; the user-id index is written first and checked on read, so a link interrupted by a
 * crash reads as absent, never as a wrong ghost. Single writer process assumed.
 */
export class GhostStore {
  /** Serialises writes in this process, so two links cannot both pass the checks. */
  private readonly writes = new KeyedLock();
  private readonly byRemote: KeyValue<GhostRecord>;
  private readonly byUser: KeyValue<string>;

  constructor(store: Store, namespace = "ghosts") {
    this.byRemote = store.namespace<GhostRecord>(namespace);
    this.byUser = store.namespace<string>(`${namespace}.by-user`);
  }

  /**
   * Links a remote user to a Matrix user (idempotent). Throws if either side is already
   * linked to someone else: a Matrix user stands for exactly one remote user.
   */
  link(remoteId: string, userId: string): Promise<GhostRecord> {
    return this.writes.run("write", async () => {
      const existing = await this.getByRemoteId(remoteId);
      if (existing) {
        if (existing.userId === userId) return existing;
        throw new Error(`ghost ${remoteId} is already linked to ${existing.userId}, not ${userId}`);
      }
      const other = await this.getByUserId(userId);
      if (other)
        throw new Error(`Matrix user ${userId} is already the ghost of ${other.remoteId}, not ${remoteId}`);
      const record: GhostRecord = { remoteId, userId, profile: {} };
      await this.byUser.set(userId, remoteId);
      await this.byRemote.set(remoteId, record);
      return record;
    });
  }

  async getByRemoteId(remoteId: string): Promise<GhostRecord | undefined> {
    return this.byRemote.get(remoteId);
  }

  async getByUserId(userId: string): Promise<GhostRecord | undefined> {
    const remoteId = await this.byUser.get(userId);
    if (remoteId === undefined) return undefined;
    const record = await this.byRemote.get(remoteId);
    return record?.userId === userId ? record : undefined;
  }

  /**
   * The fields of `wanted` that differ from the profile last recorded (undefined fields of
   * `wanted` are not compared). Empty when nothing needs sending. Does not write.
   */
  async changedProfile(remoteId: string, wanted: GhostProfile): Promise<GhostProfile> {
    const current = (await this.getByRemoteId(remoteId))?.profile ?? {};
    const changed: GhostProfile = {};
    if (wanted.displayname !== undefined && wanted.displayname !== current.displayname)
      changed.displayname = wanted.displayname;
    if (wanted.avatarUrl !== undefined && wanted.avatarUrl !== current.avatarUrl)
      changed.avatarUrl = wanted.avatarUrl;
    return changed;
  }

  /** Records profile fields the homeserver accepted (merged into the last profile). */
  recordProfile(remoteId: string, sent: GhostProfile): Promise<void> {
    return this.writes.run("write", async () => {
      const record = await this.getByRemoteId(remoteId);
      if (!record) throw new Error(`ghost ${remoteId} is not linked; link it before recording its profile`);
      const profile = { ...record.profile };
      if (sent.displayname !== undefined) profile.displayname = sent.displayname;
      if (sent.avatarUrl !== undefined) profile.avatarUrl = sent.avatarUrl;
      await this.byRemote.set(remoteId, { ...record, profile });
    });
  }

  /** Forgets a ghost; returns true if it was linked. */
  unlink(remoteId: string): Promise<boolean> {
    return this.writes.run("write", async () => {
      const record = await this.getByRemoteId(remoteId);
      if (!record) return false;
      await this.byRemote.delete(remoteId);
      await this.byUser.delete(record.userId);
      return true;
    });
  }
}
