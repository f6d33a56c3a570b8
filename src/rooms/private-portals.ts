/**
 * Private portals: an invite-only room nobody can join by its alias, so the bridge invites
 * the Matrix users who have access through their logins (PortalSpec.visibility "private").
 * Each (room, user) is invited once per process; a user already in the room is fine.
 */
import { LRUCache } from "lru-cache";
import type { Portal } from "../adapter/adapter.js";
import type { HomeserverClient } from "../client/homeserver-client.js";
import { MatrixError } from "../client/matrix-error.js";
import type { Logger } from "../common/logger.js";

export interface PrivatePortalsOptions {
  client: HomeserverClient;
  /** The Matrix user of a login, or undefined when the remote id is no login. */
  userOfLogin(loginId: string): string | undefined;
  log: Logger;
}

export class PrivatePortals {
  /** "roomId userId" already invited (or found in the room). */
  private readonly invited = new LRUCache<string, true>({ max: 10_000 });

  constructor(private readonly o: PrivatePortalsOptions) {}

  /**
   * Invites (as the bot) the Matrix users of the logins among `remoteIds`. Resolves once each
   * invite was answered; a refusal is logged (the user may be in the room, or banned), a
   * homeserver that cannot be reached rejects so the caller's retry invites again.
   */
  async invite(portal: Portal, remoteIds: readonly string[]): Promise<void> {
    const bot = this.o.client.intent(this.o.client.botUserId);
    for (const remoteId of new Set(remoteIds)) {
      const userId = this.o.userOfLogin(remoteId);
      if (userId === undefined) continue;
      const key = `${portal.roomId} ${userId}`;
      if (this.invited.has(key)) continue;
      try {
        await bot.invite(portal.roomId, userId);
        this.o.log.info({ roomId: portal.roomId, userId }, "invited a login's user to a private portal");
      } catch (err) {
        if (!(err instanceof MatrixError) || err.status >= 500 || err.status === 429) throw err;
        this.o.log.info(
          { roomId: portal.roomId, userId, errcode: err.errcode },
          "invite refused; not asked again",
        );
      }
      this.invited.set(key, true);
    }
  }
}
