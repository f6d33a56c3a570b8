/**
 * A login's own IRC connection: the Matrix user on IRC as themselves (`alice_m`, not
 * `<Alice>` from the bot). It joins the channels of the portals its user is in (remembered
 * across restarts, following the user's joins and leaves on Matrix), sends their messages,
 * emotes and notices from its nick, and carries private messages both ways as the login's
 * DM portals (`pm,bob`). Channel traffic into Matrix stays the bot's job (it is in every
 * portal's channel); a session sends into Matrix only its private messages and what happened
 * to its own connection (kicks, a nick taken).
 *
 * A lost connection is not retried here: the session asks the framework (ctx.reconnect),
 * whose logins back off, and connect() builds a new session.
 */
import {
  OrderedQueue,
  PermanentError,
  type AdapterKeyValue,
  type MatrixEdit,
  type MatrixMembership,
  type MatrixMessage,
  type MessageContent,
  type Portal,
  type ProfileCache,
  type RemoteSession,
  type SessionContext,
} from "matrix-bridgekit";
import type { IrcConnection, IrcEvent } from "./irc-connection.js";
import {
  channelToId,
  idToChannel,
  idToQuery,
  ircEquals,
  isValidRoomId,
  isValidUserId,
  nickToId,
  queryToId,
  stripFormatting,
} from "./irc-ids.js";
import type { IrcLoginData } from "./login-flow.js";
import { ownEdit, ownMessage, toIrcLines, type Outgoing } from "./relay-format.js";

/** What the adapter lends a session. */
export interface SessionHost {
  readonly server: string;
  readonly username: string;
  readonly profiles: ProfileCache;
  /** A link the bridge serves for a Matrix file (ctx.mediaLink), else its mxc:// URL. */
  linkFor(mxcUrl: string, fileName: string): string;
  /** The session ended (logout, stop, lost connection): the adapter forgets it. */
  ended(session: IrcSession): void;
}

/**
 * Where the channels of a Matrix user's portals are remembered, in the adapter's key-value
 * store: written by the bot while the user has no login (their Matrix joins and leaves) and by
 * their session after, so a new login joins the channels of the portals its user is already in.
 */
export const userChannelsKey = (userId: string): string => `channels-of:${userId}`;

/** Adds or removes one channel id in a user's remembered channels (at most `max` kept). */
export async function rememberChannel(
  kv: AdapterKeyValue,
  userId: string,
  channelId: string,
  member: boolean,
  max: number,
): Promise<void> {
  const now = new Set((await kv.get<string[]>(userChannelsKey(userId))) ?? []);
  if (member === now.has(channelId) || (member && now.size >= max)) return;
  if (member) now.add(channelId);
  else now.delete(channelId);
  await kv.set(userChannelsKey(userId), [...now]);
}

export class IrcSession implements RemoteSession {
  /** Channels joined now: id -> name as the server spells it. */
  private readonly joined = new Map<string, string>();
  /** Channels the user is in on Matrix (persisted): the session is in them on IRC. */
  private wanted = new Set<string>();
  private readonly inbound: OrderedQueue;
  private ended = false;

  constructor(
    readonly conn: IrcConnection,
    private readonly ctx: SessionContext,
    private readonly host: SessionHost,
  ) {
    this.inbound = new OrderedQueue({
      pause: () => conn.pause(),
      resume: () => conn.resume(),
      onError: (err, room, type) =>
        ctx.log.error(
          { err: String(err), room, type, loginId: ctx.login.id },
          "relaying a private IRC message failed",
        ),
    });
    conn.on("event", (event) => this.onIrcEvent(event));
    conn.on("disconnected", (reason) => {
      if (this.ended) return;
      this.joined.clear();
      ctx.reconnect(`lost the IRC connection: ${reason}`);
    });
  }

  /** The nick on IRC now. */
  get nick(): string {
    return this.conn.nick;
  }

  /**
   * Right after registering: tells the user when the server gave another nick than the
   * login's, identifies to NickServ, and joins the remembered channels.
   */
  async begin(data: IrcLoginData): Promise<void> {
    if (!ircEquals(this.nick, data.nick)) {
      await this.ctx.tell(
        `The nick ${data.nick} is in use on IRC: you are ${this.nick} for now. Send \`nick <new>\` to pick another.`,
      );
    }
    if (data.auth === "nickserv" && data.password !== undefined) {
      await this.conn.send(`PRIVMSG NickServ :IDENTIFY ${data.nick} ${data.password}`);
    }
    this.wanted = new Set((await this.ctx.kv.get<string[]>(userChannelsKey(this.ctx.login.userId))) ?? []);
    for (const id of this.wanted) {
      if (!isValidRoomId(id)) continue;
      try {
        await this.joinChannel(idToChannel(id));
      } catch (err) {
        this.ctx.log.warn(
          { channel: idToChannel(id), err: String(err) },
          "a login could not rejoin a channel",
        );
      }
    }
  }

  // -- Matrix -> IRC, as the user ---------------------------------------------------------------

  async onMessage(message: MatrixMessage, portal: Portal): Promise<void> {
    const out: Outgoing = message.relayed
      ? { kind: message.msgtype === "m.notice" ? "notice" : "privmsg", prefix: "", text: message.body }
      : ownMessage(message, (mxc, name) => this.host.linkFor(mxc, name));
    await this.say(out, await this.targetOf(portal));
  }

  async onEdit(edit: MatrixEdit, portal: Portal): Promise<void> {
    await this.say(ownEdit(edit), await this.targetOf(portal));
  }

  /** The user joined a portal on Matrix: join its channel; left (or was banned): part it. */
  async onMembership(m: MatrixMembership, portal: Portal): Promise<void> {
    if (portal.login !== undefined || m.userId !== this.ctx.login.userId || !isValidRoomId(portal.remoteId))
      return;
    if (m.membership === "join") {
      await this.targetOf(portal);
    } else if (m.membership === "leave" || m.membership === "ban") {
      const name = this.joined.get(portal.remoteId) ?? idToChannel(portal.remoteId);
      this.joined.delete(portal.remoteId);
      if (this.wanted.delete(portal.remoteId)) await this.remember();
      if (this.conn.isRegistered) await this.conn.part(name, "left the Matrix room");
    }
  }

  /** A query with `user` (the user invited their ghost, or `msg`): its DM portal's remote id. */
  async startDM(user: string): Promise<string> {
    if (!isValidUserId(user)) throw new PermanentError(`"${user}" is not an IRC nick`);
    const found = await this.conn.whois(user);
    if (!found) throw new PermanentError(`${user} is not on IRC now`);
    await this.host.profiles.ensure(this.ctx, nickToId(found.nick), { displayName: found.nick });
    return queryToId(found.nick);
  }

  async resolveIdentifier(identifier: string): Promise<string | null> {
    if (!isValidUserId(identifier.toLowerCase())) return null;
    const found = await this.conn.whois(identifier);
    return found ? nickToId(found.nick) : null;
  }

  async disconnect(): Promise<void> {
    this.ended = true;
    this.host.ended(this);
    this.inbound.clear();
    await this.conn.stop("logged out of the Matrix bridge");
  }

  // -- commands ---------------------------------------------------------------------------------

  /** `nick <new>`: changes the nick on IRC and keeps it for the next connects. */
  async changeNick(nick: string): Promise<string> {
    const now = await this.conn.changeNick(nick);
    await this.keepNick(now);
    return now;
  }

  /** `join <#channel>`: joins it on IRC and keeps it. */
  async join(channel: string): Promise<string> {
    const name = await this.joinChannel(channel);
    if (!this.wanted.has(channelToId(name))) {
      this.wanted.add(channelToId(name));
      await this.remember();
    }
    return name;
  }

  /** `msg <nick>`: the DM portal of a query with `nick` (its user is invited as to a direct chat). */
  async openQuery(nick: string): Promise<void> {
    const room = await this.startDM(nickToId(nick));
    const other = idToQuery(room)!;
    await this.ctx.portals.ensure(room, { direct: true, name: nick, members: [other] });
  }

  whois(nick: string): Promise<{ nick: string; realname?: string } | null> {
    return this.conn.whois(nick);
  }

  // -- IRC -> Matrix: private messages and our own connection ------------------------------------

  private onIrcEvent(event: IrcEvent): void {
    const self = this.conn.nick;
    switch (event.type) {
      case "privmsg":
      case "action":
      case "notice": {
        if (
          event.target.startsWith("#") ||
          ircEquals(event.nick, self) ||
          !isValidUserId(nickToId(event.nick))
        )
          return;
        const body = stripFormatting(event.text);
        if (body.trim() === "") return;
        const content: MessageContent =
          event.type === "privmsg"
            ? body
            : { msgtype: event.type === "action" ? "m.emote" : "m.notice", body };
        const room = queryToId(event.nick);
        const from = nickToId(event.nick);
        this.inbound.add(
          room,
          async () => {
            await this.host.profiles.ensure(this.ctx, from, { displayName: event.nick });
            await this.ctx.portals.ensure(room, { direct: true, name: event.nick, members: [from] });
            await this.ctx.send(room, from, content, { ts: event.time });
          },
          event.type,
        );
        return;
      }
      case "kick": {
        if (!ircEquals(event.kicked, self)) return;
        const id = channelToId(event.channel);
        this.joined.delete(id);
        const wasWanted = this.wanted.delete(id);
        const reason = event.reason ? `: ${event.reason}` : "";
        const by = nickToId(event.nick);
        this.inbound.add(
          id,
          async () => {
            if (wasWanted) await this.remember();
            if (await this.ctx.portals.get(id)) {
              await this.host.profiles.ensure(this.ctx, by, { displayName: event.nick });
              await this.ctx.send(id, by, {
                msgtype: "m.notice",
                body: `kicked ${self} (${this.ctx.login.userId} on IRC) from ${event.channel}${reason}`,
              });
            }
            await this.ctx.tell(
              `${event.nick} kicked you (${self}) from ${event.channel} on IRC${reason}. Send a message in its room, or \`join ${event.channel}\`, to join again.`,
            );
          },
          "kick",
        );
        return;
      }
      case "nick": {
        if (!ircEquals(event.nick, self) && !ircEquals(event.newNick, this.conn.nick)) return;
        if (ircEquals(event.nick, event.newNick)) return;
        this.inbound.add("", () => this.keepNick(event.newNick), "nick");
        return;
      }
      default:
        return;
    }
  }

  // -- helpers ----------------------------------------------------------------------------------

  /** Where a portal's messages go: the query's nick, or the channel (joined first if needed). */
  private async targetOf(portal: Portal): Promise<string> {
    if (portal.login !== undefined) {
      const nick = idToQuery(portal.remoteId);
      if (nick === null) throw new PermanentError(`"${portal.remoteId}" is not an IRC private chat`);
      return nick;
    }
    if (!isValidRoomId(portal.remoteId))
      throw new PermanentError(`portal remote id "${portal.remoteId}" is not an IRC channel`);
    const known = this.joined.get(portal.remoteId);
    if (known !== undefined) return known;
    let name: string;
    try {
      name = await this.joinChannel(idToChannel(portal.remoteId));
    } catch (err) {
      if (err instanceof Error && err.message.startsWith("cannot join"))
        throw new PermanentError(err.message);
      throw err;
    }
    if (!this.wanted.has(portal.remoteId)) {
      this.wanted.add(portal.remoteId);
      await this.remember();
    }
    return name;
  }

  private async joinChannel(channel: string): Promise<string> {
    const result = await this.conn.join(channel);
    this.joined.set(channelToId(result.channel), result.channel);
    return result.channel;
  }

  private async say(out: Outgoing, target: string): Promise<void> {
    for (const line of toIrcLines(out, target, { nick: this.conn.nick, username: this.host.username }))
      await this.conn.send(line);
  }

  private async keepNick(nick: string): Promise<void> {
    const data = this.ctx.login.data as unknown as IrcLoginData;
    if (data.nick === nick) return;
    await this.ctx.updateLogin({
      name: `${nick} on ${this.host.server}`,
      data: { ...data, nick },
    });
  }

  private async remember(): Promise<void> {
    await this.ctx.kv.set(userChannelsKey(this.ctx.login.userId), [...this.wanted]);
  }
}
