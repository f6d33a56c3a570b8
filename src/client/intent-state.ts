import { LRUCache } from "lru-cache";
import type { KeyValue, Store } from "../store/store.js";

/** The store namespace intents remember what they did in. */
export const INTENT_STORE_NAMESPACE = "intents";

/** What the LRU holds for a key the store has no value for. */
const ABSENT = Symbol("absent");
type Cached = string | boolean | typeof ABSENT;

/**
 * What intents did, kept in the store so that a restarted bridge does not re-register or
 * re-join its ghosts: registered users, room memberships of our users, and the last
 * display name and avatar set. One key per fact, so concurrent updates of different facts
 * never overwrite each other. The store is the source of truth; a bounded LRU only saves
 * reads (absence is cached too). Every write goes to the store first, then to the LRU.
 */
export class IntentState {
  private readonly kv: KeyValue<string | boolean>;
  private readonly cache: LRUCache<string, { v: Cached }>;

  constructor(store: Store, cacheSize: number) {
    if (!Number.isInteger(cacheSize) || cacheSize < 1) {
      throw new TypeError(`cacheSize must be an integer >= 1, got ${String(cacheSize)}`);
    }
    this.kv = store.namespace<string | boolean>(INTENT_STORE_NAMESPACE);
    this.cache = new LRUCache({ max: cacheSize });
  }

  /** How many facts the LRU holds now; never more than the cache size. */
  get cachedEntries(): number {
    return this.cache.size;
  }

  async isRegistered(userId: string): Promise<boolean> {
    return (await this.read(`registered ${userId}`)) === true;
  }

  async setRegistered(userId: string): Promise<void> {
    await this.write(`registered ${userId}`, true);
  }

  /** The last membership seen or made for a user in a room ("join", "leave", "ban", …), if any. */
  async membership(roomId: string, userId: string): Promise<string | undefined> {
    const v = await this.read(`member ${roomId} ${userId}`);
    return typeof v === "string" ? v : undefined;
  }

  async setMembership(roomId: string, userId: string, membership: string): Promise<void> {
    await this.write(`member ${roomId} ${userId}`, membership);
  }

  /** The last display name or avatar URL set for a user, if any. */
  async profileField(userId: string, field: "displayname" | "avatar_url"): Promise<string | undefined> {
    const v = await this.read(`${field} ${userId}`);
    return typeof v === "string" ? v : undefined;
  }

  async setProfileField(userId: string, field: "displayname" | "avatar_url", value: string): Promise<void> {
    await this.write(`${field} ${userId}`, value);
  }

  private async read(key: string): Promise<string | boolean | undefined> {
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit.v === ABSENT ? undefined : hit.v;
    const v = await this.kv.get(key);
    // A write that finished while we read wins: do not overwrite its cache entry with our older read.
    if (!this.cache.has(key)) this.cache.set(key, { v: v ?? ABSENT });
    return v;
  }

  private async write(key: string, value: string | boolean): Promise<void> {
    await this.kv.set(key, value);
    this.cache.set(key, { v: value });
  }
}
