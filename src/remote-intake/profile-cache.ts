/**
 * Remembers the profile last set on each ghost, so an adapter can call `ensure` for every
 * message it relays and `setProfile` is called only when the profile changed. Bounded: the
 * least recently used ghosts are forgotten past `max` (their profile is then set once more,
 * which the framework's ghost store makes a no-op when nothing changed).
 */
import { LRUCache } from "lru-cache";
import type { BridgeContext, RemoteProfile, RemoteUserId } from "../adapter/adapter.js";

export class ProfileCache {
  private readonly set: LRUCache<string, string>;

  constructor(opts: { max?: number } = {}) {
    this.set = new LRUCache({ max: opts.max ?? 10_000 });
  }

  /**
   * Sets `profile` on the ghost of `user` through `ctx` unless it is the profile last set
   * there. A failed setProfile is not remembered (the next call tries again) and rejects.
   */
  async ensure(
    ctx: Pick<BridgeContext, "setProfile">,
    user: RemoteUserId,
    profile: RemoteProfile,
  ): Promise<void> {
    const key = JSON.stringify([profile.displayName ?? null, profile.avatarUrl ?? null]);
    if (this.set.get(user) === key) return;
    await ctx.setProfile(user, profile);
    this.set.set(user, key);
  }

  /** Forgets what was set on `user`: the next ensure sets it again. */
  forget(user: RemoteUserId): void {
    this.set.delete(user);
  }

  /** Ghosts remembered now (at most `max`). */
  get size(): number {
    return this.set.size;
  }
}
