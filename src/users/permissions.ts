import type { PermissionLevel } from "../adapter/adapter.js";

const RANK: Record<PermissionLevel, number> = { relay: 1, user: 2, admin: 3 };

/** Whether `level` is at least `needed`; null (no permission) never is. */
export function atLeast(level: PermissionLevel | null, needed: PermissionLevel): boolean {
  return level !== null && RANK[level] >= RANK[needed];
}

/**
 * Config `permissions`: who may use the bridge, and how. The most specific entry wins: the
 * user id, then the user's server name, then "*". Anyone no entry names has no permission.
 */
export class Permissions {
  constructor(private readonly entries: Readonly<Record<string, PermissionLevel>>) {}

  /** The user's level, or null when they may not use the bridge. Must not do I/O. */
  level(userId: string): PermissionLevel | null {
    const own = this.lookup(userId);
    if (own !== undefined) return own;
    const colon = userId.indexOf(":");
    const server = colon < 0 ? undefined : this.lookup(userId.slice(colon + 1));
    return server ?? this.lookup("*") ?? null;
  }

  private lookup(key: string): PermissionLevel | undefined {
    return Object.hasOwn(this.entries, key) ? this.entries[key] : undefined;
  }
}
