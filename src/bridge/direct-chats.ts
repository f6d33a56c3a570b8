import type { CallContext, Portal } from "../adapter/adapter.js";
import type { HomeserverClient } from "../client/homeserver-client.js";
import type { Intent } from "../client/intent.js";
import type { Logger } from "../common/logger.js";
import { PermanentError } from "../inbox/errors.js";
import type { MatrixEvent } from "../matrix/events.js";
import { UserFacingError } from "../users/errors.js";
import { stateWords, type LiveLogin, type Logins } from "../users/logins.js";
import { atLeast, type Permissions } from "../users/permissions.js";
import type { Ghosts } from "./ghosts.js";
import type { Portals } from "./portals.js";

export interface DirectChatsOptions {
  client: HomeserverClient;
  ghosts: Ghosts;
  portals: Portals;
  permissions: Permissions;
  /** Undefined when the adapter has no logins capability. */
  logins?: Logins;
  adapterName: string;
  /** How to tell a user to log in, e.g. "send `login` to @ircbot:example.org". */
  loginHint: string;
  log: Logger;
}

/**
 * Direct chats between a Matrix user's login and a remote user. Started from Matrix by
 * inviting the remote user's ghost to a direct room (the room becomes the login's DM portal,
 * the ghost joins, and so does the bot, which tells about failures there), or through the
 * provisioning API's create_dm (a new room the user is invited to). Remote-side DMs arrive
 * through a session's `portals.ensure(id, { direct: true })`. Every refusal is said: a ghost
 * that cannot take a DM rejects the invite with the reason.
 */
export class DirectChats {
  constructor(private readonly o: DirectChatsOptions) {}

  /** A Matrix user invited a ghost. */
  async onGhostInvite(event: MatrixEvent, call: CallContext): Promise<void> {
    const remoteUser = event.state_key === undefined ? null : this.o.ghosts.remoteId(event.state_key);
    if (remoteUser === null) return;
    const ghost = await this.o.ghosts.ensure(remoteUser);
    const reject = (reason: string) =>
      ghost.leave(event.room_id, reason).catch((err: unknown) => {
        this.o.log.warn({ err, roomId: event.room_id }, "a ghost could not reject an invite");
      });
    if (event.content.is_direct !== true) {
      if (!(await this.o.portals.byRoomId(event.room_id)))
        await reject("I only join direct chats and bridged rooms");
      return;
    }
    let login: LiveLogin;
    try {
      login = this.loginOf(event.sender);
    } catch (err) {
      await reject((err as Error).message);
      return;
    }
    let remoteRoom: string;
    try {
      remoteRoom = await this.startDM(login, remoteUser, call);
    } catch (err) {
      if (!(err instanceof PermanentError || err instanceof UserFacingError)) throw err; // retried
      await reject(err instanceof PermanentError ? err.userMessage : err.message);
      return;
    }
    await ghost.ensureJoined(event.room_id);
    const existing = await this.o.portals.get(remoteRoom, login.id);
    if (existing && existing.roomId !== event.room_id) {
      await ghost.sendMessage(event.room_id, {
        msgtype: "m.notice",
        body: `You already have a chat with me: https://matrix.to/#/${existing.roomId}`,
      });
      await ghost.leave(event.room_id);
      return;
    }
    if (!existing)
      await this.o.portals.adopt({ remoteId: remoteRoom, roomId: event.room_id, login: login.id });
    await this.inviteBot(ghost, event.room_id);
    this.o.log.info({ roomId: event.room_id, remoteRoom, loginId: login.id }, "DM started from Matrix");
  }

  /**
   * The DM portal of a user's login (`loginId`, or their first connected one) with a remote
   * user, made if needed (provisioning's create_dm); `created` when it was made just now.
   * Throws a UserFacingError when the user has no login that can start DMs.
   */
  async open(
    userId: string,
    remoteUser: string,
    call: CallContext,
    loginId?: string,
  ): Promise<{ portal: Portal; created: boolean }> {
    const login = this.loginOf(userId, loginId);
    const remoteRoom = await this.startDM(login, remoteUser, call);
    const existing = await this.o.portals.get(remoteRoom, login.id);
    if (existing) return { portal: existing, created: false };
    const portal = await this.o.portals.ensure(
      remoteRoom,
      { direct: true, members: [remoteUser] },
      { login: login.id, userId },
    );
    return { portal, created: true };
  }

  /** The user's connected login (`loginId`, or their first), or what to tell them. */
  loginOf(userId: string, loginId?: string): LiveLogin {
    if (!atLeast(this.o.permissions.level(userId), "user"))
      throw new UserFacingError("forbidden", "you are not allowed to use this bridge");
    if (!this.o.logins)
      throw new UserFacingError("unsupported", `the ${this.o.adapterName} bridge cannot start direct chats`);
    if (loginId !== undefined) {
      const login = this.o.logins.get(loginId);
      if (login?.userId !== userId) throw new UserFacingError("not_found", `you have no login "${loginId}"`);
      if (login.state !== "connected" || !login.session)
        throw new UserFacingError("bad_state", `your login ${login.name} is ${stateWords(login.state)}`);
      return login;
    }
    const own = this.o.logins.connectedOf(userId);
    if (own.login) return own.login;
    throw new UserFacingError(
      "bad_state",
      own.pending
        ? "your login is still connecting; try again in a moment"
        : `log in first: ${this.o.loginHint}`,
    );
  }

  private async startDM(login: LiveLogin, remoteUser: string, call: CallContext): Promise<string> {
    const session = login.session;
    if (!session?.startDM)
      throw new UserFacingError("unsupported", `the ${this.o.adapterName} bridge cannot start direct chats`);
    const room = await session.startDM(remoteUser, call);
    if (typeof room !== "string" || room === "")
      throw new Error(`the adapter's startDM returned ${JSON.stringify(room)}, not a remote room id`);
    return room;
  }

  /** The bot joins too, so that it can say in the room what could not be bridged. */
  private async inviteBot(ghost: Intent, roomId: string): Promise<void> {
    try {
      await ghost.invite(roomId, this.o.client.botUserId);
      await this.o.client.intent(this.o.client.botUserId).join(roomId);
    } catch (err) {
      this.o.log.warn({ err, roomId }, "the bot could not join a DM portal");
    }
  }
}
