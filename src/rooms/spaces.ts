/**
 * Spaces (config bridge.spaces): Matrix spaces that hold the portals, so a user finds a
 * network's rooms together. "network": one space of the shared portals, the users of logins
 * invited as their sessions use portals. "login": one space per login, holding its DM portals
 * and the shared portals its session uses, its user invited when it is made. A portal is a
 * space's child (`m.space.child` in the space) and names the space as its parent
 * (`m.space.parent`). Spaces are made by the bot on first use and remembered in the store.
 * Best effort: a failure is logged, never stops a portal.
 */
import { LRUCache } from "lru-cache";
import type { Portal } from "../adapter/adapter.js";
import type { HomeserverClient } from "../client/homeserver-client.js";
import type { Logger } from "../common/logger.js";
import { serverName } from "../matrix/events.js";
import type { KeyValue } from "../store/store.js";

export type SpaceMode = "network" | "login";

export interface SpacesOptions {
  mode: SpaceMode;
  client: HomeserverClient;
  /** Space room ids: "network", or "login <login id>". */
  records: KeyValue<string>;
  /** The network's name, e.g. "IRC": the network space's name, and in each login space's. */
  networkName: string;
  /** A login's user and name, or undefined when there is no such login. */
  loginOf(loginId: string): { userId: string; name: string } | undefined;
  log: Logger;
}

export class Spaces {
  /** Spaces being made, by record key; entries leave when they settle. */
  private readonly creating = new Map<string, Promise<string>>();
  /** Space room ids by record key, so a portal's use costs no store read. */
  private readonly ids = new LRUCache<string, string>({ max: 10_000 });
  /** "space child" and "space user" pairs already done in this process. */
  private readonly done = new LRUCache<string, true>({ max: 10_000 });

  constructor(private readonly o: SpacesOptions) {}

  private get bot() {
    return this.o.client.intent(this.o.client.botUserId);
  }

  /**
   * A portal was made (`login` undefined for a shared one; a DM portal's login) or a login's
   * session used it: it goes in the space it belongs to. Never throws.
   */
  async portalFor(portal: Portal, login: string | undefined): Promise<void> {
    try {
      if (this.o.mode === "network") {
        if (portal.login !== undefined) return; // a DM belongs to one user, not to the network
        const space = await this.space("network");
        await this.addChild(space, portal.roomId);
        const user = login === undefined ? undefined : this.o.loginOf(login);
        if (user) await this.invite(space, user.userId);
      } else {
        const user = login === undefined ? undefined : this.o.loginOf(login);
        if (!user) return;
        const space = await this.space(`login ${login}`, user);
        await this.addChild(space, portal.roomId);
      }
    } catch (err) {
      this.o.log.warn({ err, roomId: portal.roomId }, "could not put a portal in its space");
    }
  }

  /** A portal moved to its upgraded room: every space that held the old room holds the new one. Never throws. */
  async moved(before: Portal, after: Portal): Promise<void> {
    try {
      const state = await this.bot.getState(before.roomId);
      for (const parent of state.filter((e) => e.type === "m.space.parent" && e.state_key !== "")) {
        await this.bot.sendState(parent.state_key, "m.space.child", before.roomId, {});
        this.done.delete(`${parent.state_key} ${before.roomId}`);
        await this.addChild(parent.state_key, after.roomId);
      }
    } catch (err) {
      this.o.log.warn({ err, roomId: after.roomId }, "could not move an upgraded portal in its spaces");
    }
  }

  /** The space's room id, made (inviting `user`) the first time. */
  private async space(key: string, user?: { userId: string; name: string }): Promise<string> {
    const known = this.ids.get(key) ?? (await this.o.records.get(key));
    if (known !== undefined) {
      this.ids.set(key, known);
      return known;
    }
    let pending = this.creating.get(key);
    if (!pending) {
      pending = this.create(key, user).finally(() => this.creating.delete(key));
      this.creating.set(key, pending);
    }
    return pending;
  }

  private async create(key: string, user?: { userId: string; name: string }): Promise<string> {
    const roomId = await this.bot.createRoom({
      name: user ? `${this.o.networkName} (${user.name})` : this.o.networkName,
      preset: "private_chat",
      visibility: "private",
      creation_content: { type: "m.space" },
      // Only the bot changes what the space holds.
      power_level_content_override: { users: { [this.o.client.botUserId]: 100 }, events_default: 100 },
      ...(user ? { invite: [user.userId] } : {}),
    });
    await this.o.records.set(key, roomId);
    if (user) this.done.set(`${roomId} ${user.userId}`, true);
    this.o.log.info({ roomId, space: key }, "space created");
    return roomId;
  }

  private async addChild(space: string, roomId: string): Promise<void> {
    const key = `${space} ${roomId}`;
    if (this.done.has(key)) return;
    const via = [serverName(this.o.client.botUserId)];
    await this.bot.sendState(space, "m.space.child", roomId, { via });
    await this.bot.sendState(roomId, "m.space.parent", space, { via, canonical: true });
    this.done.set(key, true);
  }

  /** Invites a user to the network space once; one already there (a refused invite) is logged. */
  private async invite(space: string, userId: string): Promise<void> {
    const key = `${space} ${userId}`;
    if (this.done.has(key)) return;
    try {
      await this.bot.invite(space, userId);
    } catch (err) {
      if ((err as { status?: number }).status !== 403) throw err;
      this.o.log.debug({ userId, space }, "space invite refused (already in the space?)");
    }
    this.done.set(key, true);
  }
}
