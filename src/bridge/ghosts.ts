import { LRUCache } from "lru-cache";
import type { GhostDirectory, RemoteProfile } from "../adapter/adapter.js";
import type { HomeserverClient } from "../client/homeserver-client.js";
import type { Intent } from "../client/intent.js";
import type { Avatars } from "../media/avatars.js";
import type { IdTemplate } from "../registration/localpart.js";
import type { GhostStore } from "../store/ghost-store.js";

/**
 * Remote users as Matrix users. Ids come from the ghost template (`irc_{id}`); registration
 * and profile changes go through Intents, which remember what they did in the store, so a
 * restart re-registers nobody and re-sends no unchanged profile.
 */
export class Ghosts implements GhostDirectory {
  /** Remote ids known to be linked in the store, so a delivery does not re-read the link. */
  private readonly linked = new LRUCache<string, true>({ max: 10_000 });

  constructor(
    private readonly template: IdTemplate,
    private readonly client: HomeserverClient,
    private readonly store: GhostStore,
    private readonly avatars: Pick<Avatars, "mxcFor">,
  ) {}

  userId(remoteId: string): string {
    return this.template.userId(remoteId);
  }

  remoteId(userId: string): string | null {
    return this.template.parseUserId(userId);
  }

  /** The display name the bridge last set for a remote user's ghost, if any. */
  displayName(remoteId: string): Promise<string | undefined> {
    return this.client.intent(this.userId(remoteId)).displayName();
  }

  /** The ghost's Intent, registered on the homeserver and linked in the store. */
  async ensure(remoteId: string): Promise<Intent> {
    const userId = this.userId(remoteId);
    const intent = this.client.intent(userId);
    await intent.ensureRegistered();
    if (!this.linked.has(remoteId)) {
      if (!(await this.store.getByRemoteId(remoteId))) await this.store.link(remoteId, userId);
      this.linked.set(remoteId, true);
    }
    return intent;
  }

  /**
   * Registers the ghost and applies a profile. Unchanged fields are not re-sent (the Intent
   * remembers the last value set). An http(s) avatar is uploaded once (Avatars caches it by URL).
   */
  async applyProfile(remoteId: string, profile: RemoteProfile): Promise<void> {
    const intent = await this.ensure(remoteId);
    if (profile.displayName !== undefined) await intent.setDisplayName(profile.displayName);
    if (profile.avatarUrl !== undefined) {
      const mxc = await this.avatars.mxcFor(profile.avatarUrl, intent.userId);
      if (mxc !== undefined) await intent.setAvatarUrl(mxc);
    }
  }
}
