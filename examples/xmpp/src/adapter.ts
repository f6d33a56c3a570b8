/**
 * The XMPP adapter: the bridge logs in as one XMPP account and sits in multi-user chat rooms
 * (XEP-0045) as one occupant. Rooms are portals (`lobby@conference.example.org` ->
 * `#xmpp_lobby:domain`); the other occupants are ghosts named by their nick
 * (`@xmpp_alice:domain`); Matrix users speak through the bridge's occupant, each message
 * carrying their name (`<Alice> hello`). See ../README.md.
 */
import { randomUUID } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { Element } from "@xmpp/client";
import {
  defineAdapter,
  OrderedQueue,
  ProfileCache,
  StartBarrier,
  type BridgeContext,
  type Logger,
  type MatrixEdit,
  type MatrixMessage,
  type MatrixRoomChange,
  type MessageContent,
  type Portal,
  type PortalSpec,
  type RemoteNetworkAdapter,
  type RemoteProfile,
  type SendOptions,
} from "matrix-bridgekit";
import { resolveXmppConfig, type ResolvedXmppConfig, type XmppConfig } from "./config.js";
import { NotConnectedError, XmppConnection } from "./xmpp-connection.js";
import { isValidNick, isValidRoomId, normalizeRoomId, roomJid } from "./xmpp-ids.js";
import { roomFromUri, userFromUri } from "./xmpp-uri.js";
import {
  discoInfoIq,
  groupMessage,
  instantRoomIq,
  joinPresence,
  leavePresence,
  messageRemoteId,
  parseMucStanza,
  roomNameFromDisco,
  subjectMessage,
  type GroupMessage,
  type MucEvent,
  type OccupantPresence,
  type SubjectChange,
} from "./muc-stanzas.js";
import { formatEdit, formatMessage } from "./relay-format.js";

export type { XmppConfig } from "./config.js";

/** Where the adapter remembers the rooms it joined on demand, to rejoin them after a restart. */
const JOINED_KEY = "joined-rooms";
/** How many times a join retries with a longer nick when ours is taken. */
const NICK_ATTEMPTS = 4;

/** A room refused us (it does not exist, is members-only, we are banned, ...). */
export class JoinRefusedError extends Error {
  override readonly name = "JoinRefusedError";
  constructor(
    readonly room: string,
    readonly condition: string,
    text?: string,
  ) {
    super(`cannot join ${room}: ${condition}${text ? ` (${text})` : ""}`);
  }
}

/** A join in progress: settled by the room's subject (or the instant-room answer), an error, or a timeout. */
interface PendingJoin {
  resolve: () => void;
  reject: (err: Error) => void;
  selfSeen: boolean;
  attempts: number;
  /** The occupants before this join (empty on a first join), for the diff when it completes. */
  previous: Set<string>;
  /** The subject known before this join, if any. */
  previousSubject: string | undefined;
}

/** What the adapter knows about one room. */
interface RoomState {
  id: string;
  jid: string;
  /** Our nick in the room, as the room knows it. */
  nick: string;
  /** The other occupants' nicks. */
  occupants: Set<string>;
  name?: string;
  subject?: string;
  joined: boolean;
  joining: Promise<void> | null;
  pending: PendingJoin | null;
  /** Fixed, or has a portal: its events are relayed into Matrix. */
  relay: boolean;
}

export class XmppAdapter implements RemoteNetworkAdapter {
  readonly name = "xmpp";
  readonly createPortalsOnDemand = false;

  private ctx: BridgeContext | null = null;
  private conn: XmppConnection | null = null;
  private readonly rooms = new Map<string, RoomState>();
  /** Ids of the messages we sent, to recognise the room's reflection of them. */
  private readonly sentIds = new LRUCache<string, true>({ max: 10_000 });
  /** Display names already set per ghost, so setProfile is not repeated for every message. */
  private readonly profiles = new ProfileCache();
  /** Inbound events reach the bridge per room in the order received; reads pause above its high mark. */
  private readonly inbound = new OrderedQueue({
    pause: () => this.conn?.pause(),
    resume: () => this.conn?.resume(),
    onError: (err, room, event) =>
      this.log.error({ err: String(err), room, event }, "relaying an XMPP event failed"),
  });
  private stopping = false;
  /** Open while the session is online: handlers and queries wait here (see waitOnline). */
  private readonly online = new StartBarrier();

  constructor(
    readonly config: ResolvedXmppConfig,
    private readonly log: Logger,
  ) {}

  // -- lifecycle ------------------------------------------------------------------------------

  /**
   * Logs in (resolving once online, rejecting within `timeoutMs` with the cause), joins the
   * fixed rooms and makes their portals, then rejoins the rooms remembered from earlier runs.
   */
  async start(ctx: BridgeContext): Promise<void> {
    if (this.ctx) throw new Error("XmppAdapter.start() may be called once");
    this.ctx = ctx;
    const c = this.config;
    const conn = new XmppConnection({
      service: c.service,
      domain: c.domain,
      username: c.username,
      password: c.password,
      resource: c.resource,
      allowInsecure: c.allowInsecure,
      timeoutMs: c.timeoutMs,
      reconnectDelayMs: c.reconnectDelayMs,
      reconnectMaxDelayMs: c.reconnectMaxDelayMs,
      log: this.log,
    });
    this.conn = conn;
    conn.on("stanza", (el) => this.onStanza(el));
    conn.on("disconnected", () => this.onDisconnected());
    try {
      await conn.start();
      this.online.open();
    } catch (err) {
      // Waiting handlers fail now rather than at their timeout.
      this.online.fail(
        new NotConnectedError(`not connected to the XMPP server at ${c.service}: the session is closed`),
      );
      throw err;
    }
    // From now on every reconnect rejoins the rooms we were in.
    conn.on("online", ({ reconnected }) => {
      this.online.open();
      if (reconnected) void this.rejoinAll();
    });

    try {
      for (const id of c.rooms) {
        const state = await this.joinRoom(id, { relay: false });
        await ctx.portals.ensure(id, this.specOf(state));
        state.relay = true;
        for (const nick of state.occupants) {
          await this.ensureProfile(nick);
          await ctx.join(id, nick);
        }
      }
    } catch (err) {
      // Start-up is aborted: do not leave the connection (and its reconnects) behind.
      await conn.stop();
      throw err;
    }
    const remembered = (await ctx.kv.get<string[]>(JOINED_KEY)) ?? [];
    for (const id of remembered) {
      if (this.rooms.has(id) || !isValidRoomId(id)) continue;
      try {
        await this.joinRoom(id, { relay: true });
      } catch (err) {
        this.log.warn({ room: id, err: String(err) }, "could not rejoin a remembered room");
      }
    }
  }

  /** Leaves every room and closes the session. Never throws. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.online.fail(
      new NotConnectedError(
        `not connected to the XMPP server at ${this.config.service}: the adapter is stopping`,
      ),
    );
    const conn = this.conn;
    if (conn?.online) {
      for (const state of this.rooms.values()) {
        if (!state.joined) continue;
        try {
          await conn.send(leavePresence(state.jid, state.nick, "bridge shutting down"));
        } catch (err) {
          this.log.debug({ room: state.id, err: String(err) }, "could not leave room");
        }
      }
    }
    await conn?.stop();
    for (const state of this.rooms.values()) {
      state.joined = false;
      state.pending?.reject(new Error(`joining ${state.jid} was cut short: the bridge is stopping`));
    }
    // Events already read are delivered if the bridge takes them quickly; the rest are dropped.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.inbound.onIdle(), new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    this.inbound.clear();
  }

  // -- the homeserver's questions -------------------------------------------------------------

  /**
   * An existing room becomes a portal: asks the room for its name (disco#info), joins it and
   * returns its name, subject and occupants. A room that does not exist, or refuses us, is null.
   */
  async queryRoom(remoteId: string): Promise<PortalSpec | null> {
    if (!isValidRoomId(remoteId)) return null;
    const known = this.rooms.get(remoteId);
    if (known?.joined) return this.specOf(known);
    const jid = roomJid(remoteId, this.config.mucDomain);
    const conn = await this.waitOnline();
    let name: string;
    try {
      name = roomNameFromDisco(await conn.request(discoInfoIq(jid)), remoteId);
    } catch (err) {
      const e = err as { name?: string; condition?: string };
      if (e.name === "StanzaError") {
        this.log.info({ room: jid, condition: e.condition }, "room not found or not visible");
        return null;
      }
      throw err;
    }
    let state: RoomState;
    try {
      state = await this.joinRoom(remoteId, { relay: false });
    } catch (err) {
      if (err instanceof JoinRefusedError) {
        this.log.info({ room: jid, err: err.message }, "room refused us");
        return null;
      }
      throw err;
    }
    state.name = name;
    await this.remember();
    for (const nick of state.occupants) await this.ensureProfile(nick);
    return this.specOf(state);
  }

  /** A nick is known if it is an occupant of a room we are in (nicks are per room; no lookup is made). */
  queryUser(remoteId: string): Promise<RemoteProfile | null> {
    if (!isValidNick(remoteId)) return Promise.resolve(null);
    for (const state of this.rooms.values()) {
      if (state.occupants.has(remoteId)) return Promise.resolve({ displayName: remoteId });
    }
    return Promise.resolve(null);
  }

  userFromUri(uri: URL): string | null {
    return userFromUri(uri, this.config.mucDomain);
  }

  roomFromUri(uri: URL): string | null {
    return roomFromUri(uri, this.config.mucDomain);
  }

  // -- Matrix -> XMPP -------------------------------------------------------------------------

  /** Sends `<Alice> text` as the bridge's occupant; returns the message's id (its origin-id). */
  async onMessage(message: MatrixMessage, portal: Portal): Promise<string> {
    const state = await this.ensureJoined(portal);
    const body = formatMessage(message, message.sender.displayName, (mxc, name) => this.linkFor(mxc, name));
    return this.sendGroup(state, body);
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

  /** An XEP-0308 correction of the message when its remote id is known; else `<Alice> * text`. */
  async onEdit(edit: MatrixEdit, portal: Portal): Promise<void> {
    const state = await this.ensureJoined(portal);
    const target = edit.target.remoteId;
    await this.sendGroup(state, formatEdit(edit, edit.sender.displayName, target !== undefined), target);
  }

  /** A topic change sets the room's subject (the room may refuse; a refusal is only logged). */
  async onRoomChange(change: MatrixRoomChange, portal: Portal): Promise<void> {
    if (change.kind !== "topic") return;
    const state = await this.ensureJoined(portal);
    if ((state.subject ?? "") === change.value) return;
    state.subject = change.value;
    const id = randomUUID();
    this.sentIds.set(id, true);
    await this.connection().send(subjectMessage(state.jid, id, change.value));
  }

  // -- XMPP -> Matrix -------------------------------------------------------------------------

  /** Called synchronously per stanza, in order: updates state now, queues the bridge calls. */
  private onStanza(el: Element): void {
    const event = parseMucStanza(el, this.config.mucDomain);
    if (!event) return;
    const id = normalizeRoomId(event.roomLocal);
    const state = id === null ? undefined : this.rooms.get(id);
    if (!state) return;
    const task = this.applyEvent(state, event);
    if (task) this.inbound.add(state.id, task, event.kind);
  }

  /** Updates the room state for `event` and returns what to tell the bridge, if anything. */
  private applyEvent(state: RoomState, event: MucEvent): (() => Promise<void>) | null {
    switch (event.kind) {
      case "presence":
        return this.applyPresence(state, event);
      case "presence-error":
        this.onPresenceError(state, event.condition, event.text);
        return null;
      case "subject":
        return this.applySubject(state, event);
      case "message":
        return this.applyMessage(state, event);
      case "message-error":
        this.log.warn(
          { room: state.jid, id: event.id, condition: event.condition, text: event.text },
          "the room refused a message",
        );
        return null;
    }
  }

  private applyPresence(state: RoomState, p: OccupantPresence): (() => Promise<void>) | null {
    const pending = state.pending;
    const self = p.codes.has("110") || (pending !== null && !pending.selfSeen && p.nick === state.nick);
    if (self) return this.applySelfPresence(state, p);
    if (p.nick === state.nick) return null;
    if (pending) {
      // While joining, presences build the occupant list; the diff is relayed when the join completes.
      if (p.available) state.occupants.add(p.nick);
      else {
        state.occupants.delete(p.nick);
        if (p.codes.has("303") && p.newNick) state.occupants.add(p.newNick);
      }
      return null;
    }
    if (!state.joined) return null;
    const ctx = this.ctx;
    if (!ctx) return null;
    if (p.available) {
      if (state.occupants.has(p.nick)) return null;
      state.occupants.add(p.nick);
      return async () => {
        if (!(await this.isRelayed(state))) return;
        await this.ensureProfile(p.nick);
        await ctx.join(state.id, p.nick);
      };
    }
    if (!state.occupants.delete(p.nick)) return null;
    if (p.codes.has("303") && p.newNick !== undefined && p.newNick !== state.nick) {
      const newNick = p.newNick;
      state.occupants.add(newNick);
      return async () => {
        if (!(await this.isRelayed(state))) return;
        await ctx.leave(state.id, p.nick, `changed nick to ${newNick}`);
        await this.ensureProfile(newNick);
        await ctx.join(state.id, newNick);
      };
    }
    const reason = p.codes.has("307")
      ? `kicked${p.reason ? `: ${p.reason}` : ""}`
      : p.codes.has("301")
        ? `banned${p.reason ? `: ${p.reason}` : ""}`
        : p.reason;
    return async () => {
      if (await this.isRelayed(state)) await ctx.leave(state.id, p.nick, reason);
    };
  }

  private applySelfPresence(state: RoomState, p: OccupantPresence): (() => Promise<void>) | null {
    const pending = state.pending;
    if (p.available) {
      state.nick = p.nick;
      if (!pending || pending.selfSeen) return null;
      pending.selfSeen = true;
      if (p.codes.has("201")) {
        // We created the room and it is locked until configured: accept the default configuration.
        this.connection()
          .request(instantRoomIq(state.jid))
          .then(() => {
            this.log.info({ room: state.jid }, "created room");
            const task = this.completeJoin(state);
            if (task) this.inbound.add(state.id, task, "join");
          })
          .catch((err: unknown) => this.onPresenceError(state, "instant-room-refused", String(err)));
      }
      return null;
    }
    // We left the room (our own leave when stopping is expected).
    if (this.stopping) return null;
    if (p.codes.has("303") && p.newNick) {
      state.nick = p.newNick;
      return null;
    }
    state.joined = false;
    if (pending) {
      this.onPresenceError(state, p.codes.has("301") ? "forbidden" : "not-allowed", p.reason);
      return null;
    }
    if (p.codes.has("307") || p.codes.has("301") || !p.codes.has("332")) {
      // Kicked, banned, or the room was destroyed: do not rejoin by ourselves.
      this.log.warn({ room: state.jid, codes: [...p.codes], reason: p.reason }, `removed from ${state.jid}`);
      this.rooms.delete(state.id);
      return () => this.remember();
    }
    // 332: the service is shutting down; the reconnect rejoins.
    return null;
  }

  private applySubject(state: RoomState, s: SubjectChange): (() => Promise<void>) | null {
    const pending = state.pending;
    if (pending) {
      if (!pending.selfSeen) return null;
      // The subject ends the join (XEP-0045 §7.2.15): everything before it was history.
      state.subject = s.subject;
      const changed = pending.previousSubject !== undefined && pending.previousSubject !== s.subject;
      const task = this.completeJoin(state);
      if (!changed) return task;
      return async () => {
        await task?.();
        if (await this.isRelayed(state)) await this.ctx?.setRoomInfo(state.id, { topic: s.subject });
      };
    }
    if (!state.joined || (state.subject ?? "") === s.subject) return null;
    state.subject = s.subject;
    if (s.nick === state.nick) return null;
    const from = s.nick === "" ? undefined : s.nick;
    return async () => {
      if (!(await this.isRelayed(state))) return;
      if (from !== undefined) await this.ensureProfile(from);
      await this.ctx?.setRoomInfo(state.id, { topic: s.subject }, from);
    };
  }

  private applyMessage(state: RoomState, m: GroupMessage): (() => Promise<void>) | null {
    const ctx = this.ctx;
    if (!ctx) return null;
    if (state.pending || !state.joined) {
      this.log.debug({ room: state.jid }, "not relaying history sent while joining");
      return null;
    }
    if (m.nick === "" || m.nick === state.nick) return null;
    if (m.originId !== undefined && this.sentIds.has(m.originId)) return null;
    if (m.body.trim() === "") return null;
    const content: MessageContent = m.body.startsWith("/me ")
      ? { msgtype: "m.emote", body: m.body.slice(4) }
      : m.body;
    const opts: SendOptions = {};
    if (m.delayedTs !== undefined) opts.ts = m.delayedTs;
    const remoteId = messageRemoteId(m);
    if (m.replaces !== undefined) {
      const target = m.replaces;
      return async () => {
        if (!(await this.isRelayed(state))) return;
        await this.ensureProfile(m.nick);
        await ctx.edit(state.id, m.nick, target, content, opts);
      };
    }
    if (remoteId !== undefined) opts.remoteId = remoteId;
    return async () => {
      if (!(await this.isRelayed(state))) return;
      await this.ensureProfile(m.nick);
      await ctx.send(state.id, m.nick, content, opts);
    };
  }

  private onDisconnected(): void {
    this.online.close();
    for (const state of this.rooms.values()) {
      state.joined = false;
      state.pending?.reject(new Error(`joining ${state.jid} was cut short: the connection dropped`));
    }
  }

  // -- joining --------------------------------------------------------------------------------

  /** Joins a room (once; concurrent callers share the join) and resolves when the join is complete. */
  private async joinRoom(id: string, opts: { relay: boolean }): Promise<RoomState> {
    let state = this.rooms.get(id);
    if (!state) {
      if (this.rooms.size >= this.config.maxRooms) {
        throw new Error(
          `cannot join ${roomJid(id, this.config.mucDomain)}: already in maxRooms (${this.config.maxRooms}) rooms`,
        );
      }
      state = {
        id,
        jid: roomJid(id, this.config.mucDomain),
        nick: this.config.nick,
        occupants: new Set(),
        joined: false,
        joining: null,
        pending: null,
        relay: opts.relay,
      };
      this.rooms.set(id, state);
    }
    if (opts.relay) state.relay = true;
    if (state.joined) return state;
    state.joining ??= this.startJoin(state);
    try {
      await state.joining;
    } catch (err) {
      if (!state.joined && !state.relay && this.rooms.get(id) === state) this.rooms.delete(id);
      throw err;
    }
    return state;
  }

  private startJoin(state: RoomState): Promise<void> {
    const conn = this.connection();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.reject(new Error(`joining ${state.jid} timed out after ${this.config.timeoutMs} ms`));
      }, this.config.timeoutMs);
      const settle = () => {
        clearTimeout(timer);
        if (state.pending === pending) state.pending = null;
        state.joining = null;
      };
      const pending: PendingJoin = {
        resolve: () => {
          settle();
          resolve();
        },
        reject: (err) => {
          if (state.pending !== pending) return;
          settle();
          // What we learnt of the room during the failed join is partial: keep the old view.
          state.occupants = pending.previous;
          reject(err);
        },
        selfSeen: false,
        attempts: 1,
        previous: state.occupants,
        previousSubject: state.subject,
      };
      state.pending = pending;
      state.occupants = new Set();
      state.nick = this.config.nick;
      conn.send(joinPresence(state.jid, state.nick)).catch((err: unknown) => {
        pending.reject(err instanceof Error ? err : new Error(String(err)));
      });
    });
  }

  /** Marks the join done; returns the ghost joins and leaves that happened while we were away. */
  private completeJoin(state: RoomState): (() => Promise<void>) | null {
    const pending = state.pending;
    if (!pending) return null;
    state.joined = true;
    pending.resolve();
    const ctx = this.ctx;
    if (!ctx || !state.relay) return null;
    const joined = [...state.occupants].filter((n) => !pending.previous.has(n));
    const left = [...pending.previous].filter((n) => !state.occupants.has(n));
    if (joined.length === 0 && left.length === 0) return null;
    return async () => {
      if (!(await this.isRelayed(state))) return;
      for (const nick of left) await ctx.leave(state.id, nick, "left while the bridge was away");
      for (const nick of joined) {
        await this.ensureProfile(nick);
        await ctx.join(state.id, nick);
      }
    };
  }

  /** A join was refused: a taken nick is retried as nick_, nick__, ...; anything else fails the join. */
  private onPresenceError(state: RoomState, condition: string, text?: string): void {
    const pending = state.pending;
    if (!pending) {
      this.log.warn({ room: state.jid, condition, text }, "presence error from a room");
      return;
    }
    if (condition === "conflict" && pending.attempts < NICK_ATTEMPTS) {
      pending.attempts += 1;
      state.nick = `${state.nick}_`;
      this.log.info({ room: state.jid, nick: state.nick }, "nick taken; trying another");
      this.connection()
        .send(joinPresence(state.jid, state.nick))
        .catch((err: unknown) => pending.reject(err instanceof Error ? err : new Error(String(err))));
      return;
    }
    pending.reject(new JoinRefusedError(state.jid, condition, text));
  }

  /** Rejoins every room we were in, after a reconnect. Failures are logged, not thrown. */
  private async rejoinAll(): Promise<void> {
    for (const state of [...this.rooms.values()]) {
      if (this.stopping) return;
      if (state.joined) continue;
      try {
        await this.joinRoom(state.id, { relay: state.relay });
        this.log.info({ room: state.jid }, "rejoined");
      } catch (err) {
        this.log.warn({ room: state.jid, err: String(err) }, "could not rejoin room");
      }
    }
  }

  /**
   * The room of a portal, joining it first if we are not in it (e.g. after a restart). Waits
   * (up to timeoutMs) for the session to be online: the homeserver may deliver events while
   * the bridge is still logging in, or while it reconnects.
   */
  private async ensureJoined(portal: Portal): Promise<RoomState> {
    await this.waitOnline();
    const state = this.rooms.get(portal.remoteId);
    if (state?.joined) {
      state.relay = true;
      return state;
    }
    if (!isValidRoomId(portal.remoteId))
      throw new Error(`portal remote id "${portal.remoteId}" is not an XMPP room id`);
    const joined = await this.joinRoom(portal.remoteId, { relay: true });
    await this.remember();
    return joined;
  }

  // -- helpers --------------------------------------------------------------------------------

  /**
   * Resolves with the connection once the session is online: at once if it is, else when it
   * comes online (start() logging in, or a reconnect). Rejects with NotConnectedError after
   * timeoutMs, when the login failed, or when the adapter is stopping.
   */
  private async waitOnline(): Promise<XmppConnection> {
    const { service, timeoutMs } = this.config;
    await this.online.wait(
      timeoutMs,
      () => new NotConnectedError(`not connected to the XMPP server at ${service} within ${timeoutMs} ms`),
    );
    return this.connection();
  }

  private connection(): XmppConnection {
    if (!this.conn) throw new Error("the XMPP adapter is not started");
    return this.conn;
  }

  private async sendGroup(state: RoomState, body: string, replaces?: string): Promise<string> {
    const id = randomUUID();
    this.sentIds.set(id, true);
    await this.connection().send(groupMessage(state.jid, id, body, replaces));
    return id;
  }

  private async isRelayed(state: RoomState): Promise<boolean> {
    if (state.relay) return true;
    if (this.config.rooms.includes(state.id) || (await this.ctx?.portals.get(state.id))) state.relay = true;
    return state.relay;
  }

  private async ensureProfile(nick: string): Promise<void> {
    if (this.ctx) await this.profiles.ensure(this.ctx, nick, { displayName: nick });
  }

  private specOf(state: RoomState): PortalSpec {
    const spec: PortalSpec = {
      name: state.name ?? state.id,
      visibility: "public",
      members: [...state.occupants],
    };
    if (state.subject !== undefined && state.subject !== "") spec.topic = state.subject;
    return spec;
  }

  /** Stores the on-demand rooms (not the fixed ones) so a restart rejoins them. */
  private async remember(): Promise<void> {
    const ids = [...this.rooms.keys()].filter((id) => !this.config.rooms.includes(id));
    await this.ctx?.kv.set(JOINED_KEY, ids);
  }
}

export default defineAdapter<XmppConfig>((init) => new XmppAdapter(resolveXmppConfig(init.config), init.log));
