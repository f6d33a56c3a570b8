import { LRUCache } from "lru-cache";
import type { Logger } from "../common/logger.js";
import { DoublePuppetError, type DoublePuppets, type PuppetIntent } from "../users/double-puppet.js";
import type { Logins } from "../users/logins.js";
import { capitalise } from "../commands/notice.js";

export interface PuppetActorsOptions {
  puppets: DoublePuppets;
  users: { getDoublePuppetToken(userId: string): Promise<string | undefined> };
  logins: Logins;
  /** Tells a user something in their management room. Must not throw. */
  tell(userId: string, text: string): Promise<void>;
  log: Logger;
  /** How long a failed check is remembered before it is tried again (default 10 min). */
  retryAfterMs?: number;
}

/**
 * Double puppeting at delivery: what a login's session sends `from` the login's own remote
 * account (the user wrote from another client) is sent as the Matrix user themselves,
 * through the double-puppet registration or the token they handed over (`login-matrix`).
 * When neither works, it is sent as the ghost: the user is told once why (a failure is
 * remembered for a while, so a broken token is not checked again on every message).
 */
export class PuppetActors {
  /** Users whose puppet failed recently, with the reason. */
  private readonly failed: LRUCache<string, string>;

  constructor(private readonly o: PuppetActorsOptions) {
    this.failed = new LRUCache({ max: 10_000, ttl: o.retryAfterMs ?? 600_000 });
  }

  /** The puppet of the user whose login this is, or undefined: the ghost acts then. */
  async forLogin(loginId: string): Promise<PuppetIntent | undefined> {
    const userId = this.o.logins.get(loginId)?.userId;
    if (userId === undefined || this.failed.has(userId)) return undefined;
    const token = await this.o.users.getDoublePuppetToken(userId);
    if (token === undefined && !this.o.puppets.covers(userId)) return undefined; // not set up: nothing to say
    try {
      return await this.o.puppets.puppet(userId, token);
    } catch (err) {
      if (!(err instanceof DoublePuppetError)) throw err; // the homeserver is down: the delivery retries
      this.failed.set(userId, err.message);
      this.o.log.warn({ userId, failure: err.failure }, "double puppeting failed; sending as the ghost");
      await this.o.tell(
        userId,
        `${capitalise(err.message)}. What you send from your other clients appears as your ghost until it works again` +
          (err.failure === "invalidated" || err.failure === "wrong_user" || err.failure === "refused"
            ? "; send `login-matrix <token>` with a fresh access token."
            : "."),
      );
      return undefined;
    }
  }

  /** The user handed over a new token or took theirs back: check again on the next message. */
  reset(userId: string): void {
    this.failed.delete(userId);
    this.o.puppets.forget(userId);
  }

  /** Joins the user to a room (their new DM portal) through their puppet, when they have one. */
  async join(loginId: string, roomId: string): Promise<void> {
    const puppet = await this.forLogin(loginId);
    if (!puppet) return;
    try {
      await puppet.join(roomId);
    } catch (err) {
      this.o.log.warn({ err, roomId }, "could not join a user to their DM portal by double puppet");
    }
  }
}
