import type { MatrixEvent } from "../matrix/events.js";
import type { Store } from "../store/store.js";
import { Intent } from "./intent.js";
import { IntentState } from "./intent-state.js";
import { RoomEndpoints } from "./room-endpoints.js";
import { Transport, type TransportOptions } from "./transport.js";

export interface HomeserverClientOptions extends TransportOptions {
  /** Where intents remember registrations, memberships and profiles (namespace "intents"). */
  store: Store;
  /** Entries of the intents' LRU (registrations, memberships, profiles). Default 10 000. */
  cacheSize?: number;
}

/**
 * The client-server API as an application service speaks it: `Authorization: Bearer
 * <as_token>` (never a query-string token), `?user_id=` identity assertion for ghosts,
 * `?ts=` timestamp massaging, retries (429 waits as asked; 5xx and connection errors back
 * off exponentially with jitter; other 4xx fail at once), a bounded number of requests in
 * flight, and sends into one room kept in call order.
 *
 * Every call that acts as a user refuses, before any I/O, a user outside the registration's
 * users namespace who is not its bot. Use `intent(userId)` for the ergonomic per-user API.
 *
 * The facade of three layers: the Transport (requests, identity assertion, retries,
 * concurrency, hooks), the endpoints (ServerEndpoints, RoomEndpoints) and, here, the intents
 * (Intent creation and the membership observer).
 */
export class HomeserverClient extends RoomEndpoints {
  /** @internal Shared by every Intent of this client. */
  readonly intentState: IntentState;

  constructor(opts: HomeserverClientOptions) {
    super(new Transport(opts));
    this.intentState = new IntentState(opts.store, opts.cacheSize ?? 10_000);
  }

  /**
   * The intent of a user: the bot or a user in the users namespace. Refuses anyone else at
   * once with UserNotInNamespaceError (no HTTP call). Cheap: state lives in the client.
   */
  intent(userId: string): Intent {
    this.assertMayActAs(userId);
    return new Intent(this, userId, this.intentState);
  }

  /** The bridge bot's intent. */
  get botIntent(): Intent {
    return this.intent(this.botUserId);
  }

  /**
   * Keeps intents' membership records current. Call it for every event the homeserver
   * pushes: an m.room.member event about one of our users records its membership (join ->
   * joined; leave, ban, invite -> not joined), and a join also records that the user exists.
   * Returns true if it recorded something. Other events are ignored.
   */
  async observeEvent(event: MatrixEvent): Promise<boolean> {
    if (event.type !== "m.room.member" || typeof event.state_key !== "string") return false;
    const target = event.state_key;
    const membership = event.content?.membership;
    if (typeof membership !== "string" || typeof event.room_id !== "string") return false;
    if (!this.matcher.mayActAs(target)) return false;
    await this.intentState.setMembership(event.room_id, target, membership);
    if (membership === "join") await this.intentState.setRegistered(target);
    return true;
  }

  /** How many entries the intents' LRU holds (bounded by cacheSize). */
  get cachedIntentEntries(): number {
    return this.intentState.cachedEntries;
  }
}
