/**
 * The IRC adapter: a bot on one IRC server, and one IRC connection per logged-in Matrix user.
 * IRC users appear in Matrix as ghosts (`@irc_{nick}:domain`); channels are portals
 * (`#irc_{channel without #}:domain`). A Matrix user with a login speaks on IRC from their own
 * nick (session.ts); one without speaks through the bot, each line carrying their name
 * (config `relay`). The bot relays channel traffic into Matrix, but never what the logins'
 * own nicks do (that is the Matrix users themselves). See ../README.md.
 */
import {
  defineAdapter,
  OrderedQueue,
  PermanentError,
  ProfileCache,
  StartBarrier,
  type AdapterCommand,
  type BridgeContext,
  type CallContext,
  type CommandContext,
  type Login,
  type LoginsCapability,
  type Logger,
  type MatrixEdit,
  type MatrixMembership,
  type MatrixMessage,
  type MatrixRoomChange,
  type MessageContent,
  type Portal,
  type PortalSpec,
  type RemoteNetworkAdapter,
  type RemoteProfile,
  type SessionContext,
} from "matrix-bridgekit";
import { resolveIrcConfig, type IrcConfig, type ResolvedIrcConfig } from "./config.js";
import { IrcAuthError, IrcConnection, type IrcEvent } from "./irc-connection.js";
import {
  channelToId,
  fillUserTemplate,
  isValidChannel,
  isValidNick,
  idToChannel,
  ircEquals,
  isValidRoomId,
  isValidUserId,
  nickToId,
  stripFormatting,
} from "./irc-ids.js";
import { roomFromUri, userFromUri } from "./irc-uri.js";
import { IRC_LOGIN_FLOWS, IrcLoginProcess, parseLoginData } from "./login-flow.js";
import { formatEdit, formatMessage, ircSafeName, toIrcLines, type Outgoing } from "./relay-format.js";
import { IrcSession, rememberChannel, type SessionHost } from "./session.js";

export type { IrcConfig } from "./config.js";

/** Where the adapter remembers the channels it joined on demand, to rejoin them after a restart. */
const JOINED_KEY = "joined-channels";

/** What the adapter knows about one joined channel. */
interface ChannelState {
  id: string;
  /** The channel as the server spells it, e.g. `#Chat`. */
  name: string;
  /** Current members other than the bot: remote user id -> nick as spelled now. */
  members: Map<string, string>;
  topic?: string;
  /** In the fixed list or has a portal: its events are relayed into Matrix. */
  relay: boolean;
  joined: boolean;
  /** Whether the next member list (RPL_NAMES) is turned into ghost joins and leaves. */
  announceNames: boolean;
}

/** What an IRC event means for the bridge: tasks, each for the remote room whose order it keeps. */
type RoomTasks = Array<[room: string, task: () => Promise<void>]>;

export class IrcAdapter implements RemoteNetworkAdapter {
  readonly name = "irc";
  readonly createPortalsOnDemand = false;

  private ctx: BridgeContext | null = null;
  private conn: IrcConnection | null = null;
  private readonly channels = new Map<string, ChannelState>();
  /** Display names already set per ghost, so setProfile is not repeated for every message. */
  private readonly profiles = new ProfileCache();
  /** Inbound IRC events reach the bridge per channel in the order received; reads pause above its high mark. */
  private readonly inbound = new OrderedQueue({
    pause: () => this.conn?.pause(),
    resume: () => this.conn?.resume(),
    onError: (err, room, type) =>
      this.log.error({ err: String(err), room, type }, "relaying an IRC event failed"),
  });
  private readonly fixedIds: Set<string>;
  /** Opens once start() has finished (connected, channels joined). */
  private readonly started = new StartBarrier();
  /** The logins' connections, by login id. */
  private readonly sessions = new Map<string, IrcSession>();
  private readonly sessionHost: SessionHost;

  /** Each login is its own IRC connection with the user's nick (session.ts). */
  readonly logins: LoginsCapability = {
    flows: IRC_LOGIN_FLOWS,
    start: (flowId) => new IrcLoginProcess(flowId, this.config.server),
    connect: (login, ctx, call) => this.connectSession(login, ctx, call),
  };

  readonly commands: readonly AdapterCommand[] = [
    {
      name: "nick",
      help: "change your nick on IRC",
      args: [{ name: "nick" }],
      requires: "login",
      run: async (args, cmd) => {
        const session = this.sessionOf(cmd);
        const nick = String(args.nick);
        if (!isValidNick(nick)) throw new PermanentError(`"${nick}" is not a valid IRC nick`);
        let now: string;
        try {
          now = await session.changeNick(nick);
        } catch (err) {
          throw new PermanentError(
            `${err instanceof Error ? err.message : String(err)}; you are still ${session.nick}`,
          );
        }
        await cmd.reply(`You are ${now} on IRC now.`);
      },
    },
    {
      name: "join",
      help: "join an IRC channel with your nick (and get its room's alias)",
      args: [{ name: "#channel" }],
      requires: "login",
      run: async (args, cmd) => {
        const channel = String(args["#channel"]);
        if (!isValidChannel(channel)) throw new PermanentError(`"${channel}" is not an IRC channel (#name)`);
        let name: string;
        try {
          name = await this.sessionOf(cmd).join(channel);
        } catch (err) {
          throw new PermanentError(err instanceof Error ? err.message : String(err));
        }
        const portal = await this.ctx!.portals.ensure(channelToId(name));
        await cmd.reply(
          `You joined ${name} on IRC. Its room: ${portal.alias ?? this.ctx!.portals.aliasFor(channelToId(name))}`,
        );
      },
    },
    {
      name: "msg",
      help: "start a private chat with an IRC user, from your nick",
      args: [{ name: "nick" }],
      requires: "login",
      run: async (args, cmd) => {
        const nick = String(args.nick);
        await this.sessionOf(cmd).openQuery(nick);
        await cmd.reply(`Opened a private chat with ${nick}: accept the invitation.`);
      },
    },
    {
      name: "whois",
      help: "who is this nick on IRC",
      args: [{ name: "nick" }],
      run: async (args, cmd, call) => {
        const nick = String(args.nick);
        if (!isValidNick(nick)) throw new PermanentError(`"${nick}" is not a valid IRC nick`);
        const session = cmd.login?.session;
        await this.untilStarted();
        const found =
          session instanceof IrcSession ? await session.whois(nick) : await this.connection().whois(nick);
        call.log.debug({ nick, found: found !== null }, "whois");
        await cmd.reply(
          found
            ? `${found.nick} is on IRC${found.realname ? ` (real name: ${found.realname})` : ""}: ${this.ghostOf(found.nick)}`
            : `${nick} is not on IRC now.`,
        );
      },
    },
  ];

  constructor(
    readonly config: ResolvedIrcConfig,
    private readonly log: Logger,
  ) {
    this.fixedIds = new Set(config.channels.map(channelToId));
    this.sessionHost = {
      server: config.server,
      username: config.username,
      profiles: this.profiles,
      linkFor: (mxc, name) => this.linkFor(mxc, name),
      ended: (session) => {
        for (const [id, s] of this.sessions) if (s === session) this.sessions.delete(id);
      },
    };
  }

  // -- lifecycle ------------------------------------------------------------------------------

  async start(ctx: BridgeContext): Promise<void> {
    if (this.ctx) throw new Error("IrcAdapter.start() may be called once");
    this.ctx = ctx;
    const c = this.config;
    const conn = new IrcConnection({
      host: c.server,
      port: c.port,
      tls: c.tls,
      nick: c.nick,
      username: c.username,
      realname: c.realname,
      ...(c.password !== undefined ? { password: c.password } : {}),
      timeoutMs: c.timeoutMs,
      reconnectDelayMs: c.reconnectDelayMs,
      reconnectMaxDelayMs: c.reconnectMaxDelayMs,
      floodLines: c.floodLines,
      floodIntervalMs: c.floodIntervalMs,
      log: this.log,
    });
    this.conn = conn;
    conn.on("event", (event) => this.onIrcEvent(event));
    conn.on("disconnected", () => {
      for (const state of this.channels.values()) state.joined = false;
    });
    try {
      await conn.start();
    } catch (err) {
      this.started.fail(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
    // From now on every (re)registration rejoins what we were in.
    conn.on("registered", () => void this.rejoinAll());

    try {
      await this.joinFixedChannels(ctx);
    } catch (err) {
      // Start-up is aborted: do not leave the connection (and its reconnects) behind.
      await conn.stop("bridge start-up failed");
      this.started.fail(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
    const remembered = (await ctx.kv.get<string[]>(JOINED_KEY)) ?? [];
    for (const id of remembered) {
      if (this.channels.has(id) || !isValidRoomId(id)) continue;
      try {
        await this.joinChannel(idToChannel(id), { relay: true, announceNames: true });
      } catch (err) {
        this.log.warn(
          { channel: idToChannel(id), err: String(err) },
          "could not rejoin a remembered channel",
        );
      }
    }
    this.started.open();
  }

  /** Joins the configured channels, makes their portals and joins their members' ghosts. */
  private async joinFixedChannels(ctx: BridgeContext): Promise<void> {
    for (const name of this.config.channels) {
      const state = await this.joinChannel(name, { relay: true, announceNames: false });
      await ctx.portals.ensure(state.id, this.specOf(state));
      for (const [id, nick] of state.members) {
        await this.ensureProfile(id, nick);
        await ctx.join(state.id, id);
      }
    }
  }

  async stop(): Promise<void> {
    // The framework disconnects the logins' sessions itself; this is for any left behind.
    await Promise.all([...this.sessions.values()].map((s) => s.disconnect()));
    try {
      await this.conn?.stop();
    } catch (err) {
      this.log.warn({ err: String(err) }, "error while disconnecting from IRC");
    }
    this.inbound.clear();
  }

  // -- the homeserver's questions -------------------------------------------------------------

  async queryRoom(remoteId: string): Promise<PortalSpec | null> {
    if (!isValidRoomId(remoteId)) return null;
    await this.untilStarted();
    const known = this.channels.get(remoteId);
    if (known?.joined) {
      known.relay = true;
      return this.specOf(known);
    }
    let state: ChannelState;
    try {
      state = await this.joinChannel(idToChannel(remoteId), { relay: true, announceNames: false });
    } catch (err) {
      if (err instanceof Error && err.message.startsWith("cannot join")) {
        this.log.info({ channel: idToChannel(remoteId), err: err.message }, "channel refused us");
        return null;
      }
      throw err;
    }
    await this.remember();
    for (const [id, nick] of state.members) await this.ensureProfile(id, nick);
    return this.specOf(state);
  }

  async queryUser(remoteId: string): Promise<RemoteProfile | null> {
    if (!isValidUserId(remoteId)) return null;
    await this.untilStarted();
    const found = await this.connection().whois(remoteId);
    return found ? { displayName: found.nick } : null;
  }

  userFromUri(uri: URL): string | null {
    return userFromUri(uri, { host: this.config.server, port: this.config.port });
  }

  roomFromUri(uri: URL): string | null {
    return roomFromUri(uri, { host: this.config.server, port: this.config.port });
  }

  // -- Matrix -> IRC --------------------------------------------------------------------------

  /** Relays as the bot (`<Alice> text`). IRC has no message ids, so nothing is returned. */
  async onMessage(message: MatrixMessage, portal: Portal): Promise<void> {
    this.mayRelay();
    const state = await this.ensureJoined(portal);
    await this.relay(
      formatMessage(message, message.sender.displayName, (mxc, name) => this.linkFor(mxc, name)),
      state,
    );
  }

  /** A link the bridge serves for a Matrix file (ctx.mediaLink); its mxc:// URL when there is none. */
  private linkFor(mxcUrl: string, fileName: string): string {
    try {
      return this.ctx!.mediaLink(mxcUrl, { fileName });
    } catch (err) {
      this.ctx?.log.warn({ err }, "no link for a Matrix file (set media.publicUrl); sending its mxc:// URL");
      return mxcUrl;
    }
  }

  /** IRC cannot edit: the new text is sent as a correction line, `<Alice> * new text`. */
  async onEdit(edit: MatrixEdit, portal: Portal): Promise<void> {
    this.mayRelay();
    const state = await this.ensureJoined(portal);
    await this.relay(formatEdit(edit, edit.sender.displayName), state);
  }

  /** With `announceMembership`, a NOTICE tells the channel a Matrix user joined or left; else nothing. */
  async onMembership(membership: MatrixMembership, portal: Portal): Promise<void> {
    // Remembered for the user's login, which joins these channels when it connects.
    if (portal.login === undefined && isValidRoomId(portal.remoteId)) {
      const m = membership.membership;
      if (m === "join" || m === "leave" || m === "ban")
        await rememberChannel(
          this.ctx!.kv,
          membership.userId,
          portal.remoteId,
          m === "join",
          this.config.maxChannels,
        );
    }
    if (!this.config.announceMembership) return;
    const verb =
      membership.membership === "join"
        ? "joined"
        : membership.membership === "leave" || membership.membership === "ban"
          ? "left"
          : null;
    if (verb === null || membership.previous === membership.membership) return;
    const state = await this.ensureJoined(portal);
    const name = ircSafeName(membership.displayName ?? membership.sender.displayName);
    await this.relay({ kind: "notice", prefix: "", text: `${name} ${verb} the Matrix room` }, state);
  }

  /** A topic change becomes TOPIC (the bot needs the right to set it; a refusal is only logged). */
  async onRoomChange(change: MatrixRoomChange, portal: Portal): Promise<void> {
    if (change.kind !== "topic") return;
    const state = await this.ensureJoined(portal);
    const topic = change.value.replace(/[\r\n\0]+/g, " ");
    if (state.topic === topic) return;
    state.topic = topic;
    await this.connection().send(`TOPIC ${state.name} :${topic}`);
  }

  // -- IRC -> Matrix --------------------------------------------------------------------------

  /** Called synchronously per IRC event, in order: updates state now, queues the bridge calls per room. */
  private onIrcEvent(event: IrcEvent): void {
    for (const [room, task] of this.applyEvent(event)) this.inbound.add(room, task, event.type);
  }

  /** Updates the channel state for `event` and returns what to tell the bridge, per remote room. */
  private applyEvent(event: IrcEvent): RoomTasks {
    const ctx = this.ctx;
    const self = this.conn?.nick ?? this.config.nick;
    if (!ctx) return [];
    switch (event.type) {
      case "privmsg":
      case "action":
      case "notice": {
        if (!event.target.startsWith("#") || ircEquals(event.nick, self) || this.isLoginNick(event.nick))
          return [];
        const state = this.channels.get(channelToId(event.target));
        if (!state) return [];
        const body = stripFormatting(event.text);
        if (body.trim() === "") return [];
        const content: MessageContent =
          event.type === "privmsg"
            ? body
            : { msgtype: event.type === "action" ? "m.emote" : "m.notice", body };
        const from = nickToId(event.nick);
        return [
          [
            state.id,
            async () => {
              if (!(await this.isRelayed(state))) return;
              await this.ensureProfile(from, event.nick);
              await ctx.send(state.id, from, content, { ts: event.time });
            },
          ],
        ];
      }
      case "join": {
        if (ircEquals(event.nick, self) || this.isLoginNick(event.nick)) return [];
        const state = this.channels.get(channelToId(event.channel));
        if (!state) return [];
        const id = nickToId(event.nick);
        state.members.set(id, event.nick);
        return [
          [
            state.id,
            async () => {
              if (!(await this.isRelayed(state))) return;
              await this.ensureProfile(id, event.nick);
              await ctx.join(state.id, id);
            },
          ],
        ];
      }
      case "part":
      case "kick": {
        const who = event.type === "kick" ? event.kicked : event.nick;
        const state = this.channels.get(channelToId(event.channel));
        if (!state) return [];
        if (ircEquals(who, self)) {
          this.log.warn({ channel: state.name, by: event.nick, reason: event.reason }, `left ${state.name}`);
          this.channels.delete(state.id);
          return [[state.id, () => this.remember()]];
        }
        const id = nickToId(who);
        state.members.delete(id);
        if (this.isLoginNick(who)) return [];
        const reason =
          event.type === "kick"
            ? `kicked by ${event.nick}${event.reason ? `: ${event.reason}` : ""}`
            : event.reason || undefined;
        return [
          [
            state.id,
            async () => {
              if (await this.isRelayed(state)) await ctx.leave(state.id, id, reason);
            },
          ],
        ];
      }
      case "quit": {
        if (ircEquals(event.nick, self) || this.isLoginNick(event.nick)) return [];
        const id = nickToId(event.nick);
        const shared = [...this.channels.values()].filter((s) => s.members.delete(id));
        const reason = event.reason ? `quit: ${event.reason}` : "quit";
        return shared.map((state) => [
          state.id,
          async () => {
            if (await this.isRelayed(state)) await ctx.leave(state.id, id, reason);
          },
        ]);
      }
      case "nick":
        return this.applyNickChange(ctx, event.nick, event.newNick, self);
      case "topic": {
        const state = this.channels.get(channelToId(event.channel));
        if (!state) return [];
        state.topic = event.topic;
        if (ircEquals(event.nick, self) || this.isLoginNick(event.nick)) return [];
        const from = nickToId(event.nick);
        return [
          [
            state.id,
            async () => {
              if (!(await this.isRelayed(state))) return;
              await this.ensureProfile(from, event.nick);
              await ctx.setRoomInfo(state.id, { topic: event.topic }, from);
            },
          ],
        ];
      }
      case "names":
        return this.applyNames(ctx, event.channel, event.nicks, self);
    }
  }

  /**
   * A nick change. A case-only change (`alice` -> `Alice`) is the same ghost: only its display
   * name changes. Otherwise the ghosts differ: the old one leaves and the new one joins every
   * channel the user shares with the bot.
   */
  private applyNickChange(ctx: BridgeContext, oldNick: string, newNick: string, self: string): RoomTasks {
    if (ircEquals(oldNick, self) || ircEquals(newNick, self)) return [];
    if (this.isLoginNick(oldNick) || this.isLoginNick(newNick)) {
      for (const state of this.channels.values()) state.members.delete(nickToId(oldNick));
      return [];
    }
    const oldId = nickToId(oldNick);
    const newId = nickToId(newNick);
    const shared = [...this.channels.values()].filter((s) => s.members.has(oldId));
    for (const state of shared) {
      state.members.delete(oldId);
      state.members.set(newId, newNick);
    }
    return shared.map((state) => [
      state.id,
      async () => {
        await this.ensureProfile(newId, newNick);
        if (oldId === newId || !(await this.isRelayed(state))) return;
        await ctx.leave(state.id, oldId, `changed nick to ${newNick}`);
        await ctx.join(state.id, newId);
      },
    ]);
  }

  /** A channel's member list: after a (re)join, ghosts that joined or left meanwhile are synced. */
  private applyNames(ctx: BridgeContext, channel: string, nicks: string[], self: string): RoomTasks {
    const state = this.channels.get(channelToId(channel));
    if (!state) return [];
    state.name = channel;
    const now = new Map<string, string>();
    for (const nick of nicks)
      if (!ircEquals(nick, self) && !this.isLoginNick(nick)) now.set(nickToId(nick), nick);
    const joined = [...now].filter(([id]) => !state.members.has(id));
    const left = [...state.members.keys()].filter((id) => !now.has(id));
    state.members = now;
    if (!state.announceNames) {
      state.announceNames = true;
      return [];
    }
    if (joined.length === 0 && left.length === 0) return [];
    return [
      [
        state.id,
        async () => {
          if (!(await this.isRelayed(state))) return;
          for (const id of left) await ctx.leave(state.id, id, "left while the bridge was away");
          for (const [id, nick] of joined) {
            await this.ensureProfile(id, nick);
            await ctx.join(state.id, id);
          }
        },
      ],
    ];
  }

  // -- logins -----------------------------------------------------------------------------------

  /** A login's connection: registered with the login's nick (or a suffixed one), then its channels. */
  private async connectSession(login: Login, ctx: SessionContext, call: CallContext): Promise<IrcSession> {
    const data = parseLoginData(login.data, login.id);
    const c = this.config;
    const who = { nick: data.nick, userId: login.userId };
    const conn = new IrcConnection({
      host: c.server,
      port: c.port,
      tls: c.tls,
      nick: data.nick,
      username: fillUserTemplate(c.userIdent, who, "ident"),
      realname: fillUserTemplate(c.userRealname, who, "realname"),
      ...(data.auth === "sasl" ? { sasl: { account: data.nick, password: data.password! } } : {}),
      reconnect: false,
      timeoutMs: c.timeoutMs,
      reconnectDelayMs: c.reconnectDelayMs,
      reconnectMaxDelayMs: c.reconnectMaxDelayMs,
      floodLines: c.floodLines,
      floodIntervalMs: c.floodIntervalMs,
      log: call.log,
    });
    const session = new IrcSession(conn, ctx, this.sessionHost);
    this.sessions.set(login.id, session);
    const abort = () => void conn.stop("connecting took too long");
    call.signal.addEventListener("abort", abort, { once: true });
    try {
      await conn.start();
      await session.begin(data);
      return session;
    } catch (err) {
      await session.disconnect();
      if (err instanceof IrcAuthError) throw new PermanentError(err.message);
      throw err;
    } finally {
      call.signal.removeEventListener("abort", abort);
    }
  }

  /** True if `nick` is a login's connection: what it does is a Matrix user's, not a ghost's. */
  private isLoginNick(nick: string): boolean {
    for (const s of this.sessions.values()) if (ircEquals(s.nick, nick)) return true;
    return false;
  }

  private sessionOf(cmd: CommandContext): IrcSession {
    const session = cmd.login?.session;
    if (!(session instanceof IrcSession))
      throw new PermanentError("you have no IRC connection: send `login` first");
    return session;
  }

  private ghostOf(nick: string): string {
    return this.ctx?.ghosts.userId(nickToId(nick)) ?? nick;
  }

  /** Without `relay`, the bot speaks for nobody: a user without a login is told to log in. */
  private mayRelay(): void {
    if (!this.config.relay)
      throw new PermanentError(
        "this bridge does not relay for users without a login: send `login` to the bridge bot",
      );
  }

  // -- helpers --------------------------------------------------------------------------------

  /**
   * Waits until start() has finished, at most `timeoutMs`. The homeserver may push events and
   * queries as soon as the bridge listens, which is before the adapter has connected; they wait
   * here instead of failing; past the wait, or when the start failed, they fail ("not connected").
   */
  private untilStarted(): Promise<void> {
    const { server, port, timeoutMs } = this.config;
    return this.started.wait(
      timeoutMs,
      () =>
        new Error(
          `not connected to IRC server ${server}:${port}: the adapter did not start within ${timeoutMs} ms`,
        ),
    );
  }

  private connection(): IrcConnection {
    if (!this.conn) throw new Error("the IRC adapter is not started");
    return this.conn;
  }

  /** Joins `channel` and records its state; the member list arrives through the "names" event. */
  private async joinChannel(
    channel: string,
    opts: { relay: boolean; announceNames: boolean },
  ): Promise<ChannelState> {
    const id = channelToId(channel);
    let state = this.channels.get(id);
    if (!state) {
      if (this.channels.size >= this.config.maxChannels) {
        throw new Error(
          `cannot join ${channel}: already in maxChannels (${this.config.maxChannels}) channels`,
        );
      }
      state = {
        id,
        name: channel,
        members: new Map(),
        relay: opts.relay,
        joined: false,
        announceNames: opts.announceNames,
      };
      this.channels.set(id, state);
    }
    try {
      const result = await this.connection().join(channel);
      state.name = result.channel;
      if (result.topic !== undefined) state.topic = result.topic;
      state.joined = true;
      return state;
    } catch (err) {
      if (!state.joined && this.channels.get(id) === state && state.members.size === 0)
        this.channels.delete(id);
      throw err;
    }
  }

  /** Joins every channel we were in, after a reconnect. Failures are logged, not thrown. */
  private async rejoinAll(): Promise<void> {
    for (const state of [...this.channels.values()]) {
      if (state.joined) continue;
      state.announceNames = true;
      try {
        await this.joinChannel(state.name, { relay: state.relay, announceNames: true });
        this.log.info({ channel: state.name }, "rejoined");
      } catch (err) {
        this.log.warn({ channel: state.name, err: String(err) }, "could not rejoin channel");
      }
    }
  }

  /** The channel of a portal, joining it first if the bot is not in it (e.g. after a restart). */
  private async ensureJoined(portal: Portal): Promise<ChannelState> {
    await this.untilStarted();
    const state = this.channels.get(portal.remoteId);
    if (state?.joined) {
      state.relay = true;
      return state;
    }
    if (!isValidRoomId(portal.remoteId))
      throw new Error(`portal remote id "${portal.remoteId}" is not an IRC channel`);
    const joined = await this.joinChannel(state?.name ?? idToChannel(portal.remoteId), {
      relay: true,
      announceNames: true,
    });
    await this.remember();
    return joined;
  }

  private async relay(out: Outgoing, state: ChannelState): Promise<void> {
    const conn = this.connection();
    const lines = toIrcLines(out, state.name, { nick: conn.nick, username: this.config.username });
    for (const line of lines) await conn.send(line);
  }

  private async isRelayed(state: ChannelState): Promise<boolean> {
    if (state.relay) return true;
    if (this.fixedIds.has(state.id) || (await this.ctx?.portals.get(state.id))) state.relay = true;
    return state.relay;
  }

  private async ensureProfile(id: string, nick: string): Promise<void> {
    if (this.ctx) await this.profiles.ensure(this.ctx, id, { displayName: nick });
  }

  private specOf(state: ChannelState): PortalSpec {
    const spec: PortalSpec = { name: state.name, visibility: "public", members: [...state.members.keys()] };
    if (state.topic !== undefined && state.topic !== "") spec.topic = state.topic;
    return spec;
  }

  /** Stores the on-demand channels (not the fixed ones) so a restart rejoins them. */
  private async remember(): Promise<void> {
    const ids = [...this.channels.keys()].filter((id) => !this.fixedIds.has(id));
    await this.ctx?.kv.set(JOINED_KEY, ids);
  }
}

export default defineAdapter<IrcConfig>((init) => new IrcAdapter(resolveIrcConfig(init.config), init.log));
