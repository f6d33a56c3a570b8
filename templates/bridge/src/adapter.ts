/**
 * The {{network}} adapter of {{name}}: everything the bridge knows about the remote network.
 *
 * matrix-bridgekit does the Matrix side (the application-service API, ghosts, portal rooms,
 * ordering, retries, storage); this file maps between Matrix and the network. It implements
 * EVERY capability of the adapter contract against `InMemoryNetwork` (remote-network.ts), a
 * stand-in for the real network, so the bridge works end to end from the first minute.
 *
 * Two ways a Matrix user reaches the network, both here:
 * - relay (the bot-level handlers below): one connection of the bridge speaks for every
 *   Matrix user without a login; they appear on the network under their Matrix id;
 * - logins (`logins` below, the flow and the session in logins.ts): a user who logged in to
 *   their own account talks through their own connection, as themselves.
 * The framework picks for each event: the sender's login, else the room's relay login
 * (`relay set`), else the bot-level handlers.
 * To bridge the real network, replace the `NetworkConnection` calls with its client library,
 * and delete the capabilities it cannot support: an absent method means "not supported", and
 * the framework then tells Matrix users so with a notice instead of dropping their action.
 *
 * Ids: remote users, rooms and messages are plain strings the network chooses. The framework
 * turns them into Matrix ids with the config's templates (ghost "alice" becomes
 * @{{prefix}}alice:{{domain}}, room "lobby" becomes #{{prefix}}lobby:{{domain}}).
 * Never build Matrix ids here; use ctx.ghosts / ctx.portals.
 *
 * Contract reminders (see RemoteNetworkAdapter in matrix-bridgekit for the full text):
 * - Calls for one Matrix room never overlap; different rooms run in parallel.
 * - The on* handlers are called only after start() resolved; the homeserver's queries
 *   (queryUser, queryRoom) may arrive before it, so they must not need the connection.
 * - A Matrix-side handler that throws: a RetryableError is retried with backoff (the room's
 *   later events wait, other rooms go on); a PermanentError("what to tell the user") is given
 *   up on at once and the sender told in the room; anything else is retried a few times, then
 *   given up on. Call ctx.remoteNetworkUp() after a reconnect. Be idempotent where you can.
 * - Everything sent through ctx (send, edit, redact, react, join, leave, setProfile,
 *   setRoomInfo) is durable once its promise resolves: stored, delivered in order, retried.
 */
import {
  defineAdapter,
  type BridgeContext,
  type MatrixEdit,
  type MatrixMembership,
  type MatrixMessage,
  type MatrixReaction,
  type MatrixReceipt,
  type MatrixRedaction,
  type MatrixRoomChange,
  type MatrixTyping,
  type Logger,
  type Login,
  type LoginsCapability,
  type Portal,
  type PortalSpec,
  type RemoteMessageId,
  type RemoteNetworkAdapter,
  type RemoteProfile,
  type RemoteSession,
  type SessionContext,
  type ThirdPartyCapability,
} from "matrix-bridgekit";
import { AccountSession, PasswordLogin } from "./logins.js";
import { postOptions } from "./matrix-to-network.js";
import {
  InMemoryNetwork,
  authorOf,
  startEchoUser,
  type NetworkConnection,
  type NetworkEvent,
} from "./remote-network.js";

/** The network id: the adapter's name, the URI scheme and the third-party protocol id. */
export const NETWORK = "{{network}}";

/** The config file's `adapter.config` section. Validated by the factory at the bottom. */
export interface AdapterConfig {
  /** Rooms that exist on the in-memory network at start (default ["lobby"]). */
  rooms?: string[];
  /** A network user that repeats what is said in the rooms (default "echo"); null for none. */
  echoUser?: string | null;
  /** Accounts people can log in to, username -> password (default none). */
  accounts?: Record<string, string>;
}

export class Adapter implements RemoteNetworkAdapter {
  /** Used in logs, metrics and the per-network room directory. */
  readonly name = NETWORK;

  /**
   * True: a remote message in a room without a portal creates the portal (asking queryRoom
   * for its name and topic). False: portals are made only when a Matrix user joins an alias
   * like #{{prefix}}lobby:{{domain}}, and ctx.send into other rooms fails.
   */
  readonly createPortalsOnDemand = true;

  private ctx: BridgeContext | undefined;
  private connection: NetworkConnection | undefined;
  /** Remote events are forwarded one at a time, in the order the network reported them. */
  private forwarding: Promise<void> = Promise.resolve();
  /** The logins' live sessions, by account: what those accounts do, their sessions bridge. */
  private readonly sessions = new Map<string, AccountSession>();

  constructor(
    readonly network: InMemoryNetwork,
    private readonly log: Logger,
  ) {}

  // -- Lifecycle --------------------------------------------------------------------------

  /**
   * Called once, after the bridge listens and the homeserver answered. Connect here (never in
   * the factory) and start forwarding the network's events through `ctx`. Reject to abort
   * start-up: the error is shown to the operator.
   */
  start(ctx: BridgeContext): Promise<void> {
    this.ctx = ctx;
    this.connection = this.network.connect((event) => {
      if (this.sessions.has(authorOf(event))) return; // a logged-in account: its session bridges it
      this.forwarding = this.forwarding
        .then(() => this.forward(ctx, event))
        .catch((err: unknown) => {
          // A real adapter would not acknowledge the event to its network, so that it comes again.
          ctx.log.error({ err, event: event.type }, "could not forward a remote event to Matrix");
        });
    });
    this.log.info("connected to the %s network", NETWORK);
    return Promise.resolve();
  }

  /** Called once on shutdown, after Matrix-side intake stopped. Must not throw. */
  async stop(): Promise<void> {
    this.connection?.close();
    this.connection = undefined;
    await this.forwarding; // let what was already reported reach the outbox
    this.ctx = undefined;
  }

  // -- Remote -> Matrix -----------------------------------------------------------------

  /** Maps one network event to the framework's durable calls. */
  private async forward(ctx: BridgeContext, event: NetworkEvent): Promise<void> {
    switch (event.type) {
      case "message": {
        const m = event.message;
        const user = this.network.user(m.from);
        if (user) await ctx.setProfile(m.from, { displayName: user.displayName });
        const content = m.action ? { msgtype: "m.emote" as const, body: m.text } : m.text;
        await ctx.send(m.room, m.from, content, {
          ts: m.ts,
          remoteId: m.id,
          ...(m.replyTo !== undefined ? { replyTo: m.replyTo } : {}),
        });
        return;
      }
      case "edit":
        return ctx.edit(event.room, event.from, event.id, event.text, { ts: event.ts });
      case "delete":
        return ctx.redact(event.room, event.from, event.id);
      case "reaction":
        return ctx.react(event.room, event.from, event.target, event.key, {
          ts: event.ts,
          remoteId: event.id,
        });
      case "typing":
        // Best effort: only for rooms that have a portal already.
        if (await ctx.portals.get(event.room)) await ctx.typing(event.room, event.from, event.typing);
        return;
      case "join":
        return ctx.join(event.room, event.user);
      case "leave":
        if (await ctx.portals.get(event.room)) await ctx.leave(event.room, event.user);
        return;
      case "room-info": {
        const info: Pick<PortalSpec, "name" | "topic"> = {};
        if (event.name !== undefined) info.name = event.name;
        if (event.topic !== undefined) info.topic = event.topic;
        if (await ctx.portals.get(event.room)) await ctx.setRoomInfo(event.room, info, event.from);
        return;
      }
      case "profile":
        return ctx.setProfile(event.user, { displayName: event.displayName });
    }
  }

  // -- Matrix -> remote (each optional: delete what the network cannot do) ----------------

  /**
   * A Matrix message in a portal. Return the remote message's id: the framework remembers
   * it, and later edits, redactions, replies and reactions then carry it as `remoteId`.
   */
  async onMessage(message: MatrixMessage, portal: Portal): Promise<RemoteMessageId> {
    const connection = this.connected();
    const from = message.sender.userId;
    this.ensureRemoteUser(from, message.sender.displayName);
    return connection.post(portal.remoteId, from, message.body, await postOptions(message, this.ctx!));
  }

  /** An m.replace edit. `edit.target.remoteId` is absent when the original was never bridged. */
  onEdit(edit: MatrixEdit, portal: Portal): Promise<void> {
    if (edit.target.remoteId === undefined) return Promise.resolve();
    this.connected().edit(portal.remoteId, edit.sender.userId, edit.target.remoteId, edit.body);
    return Promise.resolve();
  }

  /** A redaction of a message or reaction. */
  onRedaction(redaction: MatrixRedaction, portal: Portal): Promise<void> {
    if (redaction.target.remoteId === undefined) return Promise.resolve();
    this.connected().remove(portal.remoteId, redaction.sender.userId, redaction.target.remoteId);
    return Promise.resolve();
  }

  /** A reaction. Return its remote id so that redacting the reaction can find it. */
  onReaction(reaction: MatrixReaction, portal: Portal): Promise<RemoteMessageId | void> {
    if (reaction.target.remoteId === undefined) return Promise.resolve();
    return Promise.resolve(
      this.connected().react(portal.remoteId, reaction.sender.userId, reaction.target.remoteId, reaction.key),
    );
  }

  /** A Matrix user (never one of our ghosts) joined, left, was invited, kicked or banned. */
  onMembership(membership: MatrixMembership, portal: Portal): Promise<void> {
    const connection = this.connected();
    if (membership.membership === "join") {
      this.ensureRemoteUser(membership.userId, membership.displayName ?? membership.userId);
      connection.join(portal.remoteId, membership.userId);
    } else if (membership.membership === "leave" || membership.membership === "ban") {
      connection.leave(portal.remoteId, membership.userId);
    }
    return Promise.resolve();
  }

  /** Who is typing in the portal now (best effort: never retried, so never throw). */
  onTyping(typing: MatrixTyping, portal: Portal): Promise<void> {
    const room = this.network.room(portal.remoteId);
    if (!room || !this.connection) return Promise.resolve();
    const now = new Set(typing.userIds);
    for (const user of now) this.connection.setTyping(room.id, user, true);
    for (const user of room.typing) if (!now.has(user)) this.connection.setTyping(room.id, user, false);
    return Promise.resolve();
  }

  /** A read receipt (best effort). `remoteId` is present when the event was bridged. */
  onReceipt(receipt: MatrixReceipt, portal: Portal): Promise<void> {
    if (receipt.remoteId !== undefined && this.network.room(portal.remoteId)) {
      this.connection?.markRead(portal.remoteId, receipt.userId, receipt.remoteId);
    }
    return Promise.resolve();
  }

  /** The portal's name, topic or avatar changed on Matrix ("" when removed). */
  onRoomChange(change: MatrixRoomChange, portal: Portal): Promise<void> {
    if (change.kind === "avatar") return Promise.resolve(); // the in-memory network has no avatars
    this.connected().setRoomInfo(portal.remoteId, change.sender.userId, { [change.kind]: change.value });
    return Promise.resolve();
  }

  // -- Logins (optional): users' own accounts ----------------------------------------------

  /**
   * With this capability, users log in to their own {{network}} account: `login` in a direct
   * chat with the bot @{{network}}bot:{{domain}} (or a bridge manager app, through the
   * provisioning API). The framework runs the conversation and checks the answers, stores the
   * login, calls `connect` now and at every start (retrying with backoff when it fails), and
   * gives the session its user's events. Delete it if the network has no accounts: everyone
   * is then relayed by the handlers above.
   */
  readonly logins: LoginsCapability = {
    // The ways to log in; the first is what a bare `login` uses.
    flows: [{ id: "password", name: "Password", description: "Your {{network}} username and password" }],
    // One process per attempt; no I/O here (its start() does the work).
    start: () => new PasswordLogin(this.network),
    // A stored login -> its session. A PermanentError means "log in again" (the user is told);
    // any other error: the framework tries again later.
    connect: (login: Login, ctx: SessionContext): Promise<RemoteSession> => {
      const session = new AccountSession(
        this.network,
        ctx,
        (c, event) => this.forward(c, event),
        () => {
          if (this.sessions.get(login.id) === session) this.sessions.delete(login.id);
        },
      );
      this.sessions.set(login.id, session);
      return Promise.resolve(session);
    },
  };

  // -- The homeserver's questions -------------------------------------------------------

  /** Does this remote user exist? A profile registers their ghost; null answers "no such user". */
  queryUser(remoteId: string): Promise<RemoteProfile | null> {
    const user = this.network.user(remoteId);
    return Promise.resolve(user ? { displayName: user.displayName } : null);
  }

  /**
   * Does this remote room exist? Asked when someone joins #{{prefix}}<room>:{{domain}}, and by
   * createPortalsOnDemand. A spec creates the portal; null answers "no such room".
   */
  queryRoom(remoteId: string): Promise<PortalSpec | null> {
    const room = this.network.room(remoteId);
    // Direct chats get no shared portal: each login has its own (see logins.ts).
    if (!room || room.direct) return Promise.resolve(null);
    return Promise.resolve({
      name: room.name,
      topic: room.topic,
      visibility: "public",
      // Remote users already there get their ghosts joined when the portal is made.
      members: [...room.members].filter((m) => this.network.user(m) !== undefined),
    });
  }

  /** `{{network}}://user/alice` -> "alice". Must not do I/O. */
  userFromUri(uri: URL): string | null {
    return idFromUri(uri, "user");
  }

  /** `{{network}}://room/lobby` -> "lobby". Must not do I/O. */
  roomFromUri(uri: URL): string | null {
    return idFromUri(uri, "room");
  }

  /**
   * Third-party lookups (`/thirdparty/...`): how clients find remote users and rooms. The
   * registration must list the protocol: `protocols: [{{network}}]`.
   */
  readonly thirdParty: ThirdPartyCapability = {
    protocols: {
      [NETWORK]: {
        user_fields: ["user"],
        location_fields: ["room"],
        icon: "",
        field_types: {
          user: { regexp: "\\S+", placeholder: "alice" },
          room: { regexp: "\\S+", placeholder: "lobby" },
        },
        instances: [{ desc: "{{network}}", fields: {}, network_id: NETWORK }],
      },
    },
    lookupUser: (_protocol, fields) => {
      const id = fields.user;
      return Promise.resolve(id !== undefined && this.network.user(id) ? [id] : []);
    },
    lookupLocation: (_protocol, fields) => {
      const text = fields.room;
      return Promise.resolve(text === undefined ? [] : this.network.findRooms(text).map((r) => r.id));
    },
  };

  // -- Helpers ----------------------------------------------------------------------------

  private connected(): NetworkConnection {
    if (!this.connection) throw new Error(`the ${NETWORK} adapter is not started`);
    return this.connection;
  }

  /** Matrix users appear on the network under their Matrix id. */
  private ensureRemoteUser(userId: string, displayName: string): void {
    if (this.network.user(userId)?.displayName !== displayName) this.network.addUser(userId, displayName);
  }
}

function idFromUri(uri: URL, kind: "user" | "room"): string | null {
  if (uri.protocol !== `${NETWORK}:` || uri.hostname !== kind) return null;
  const id = decodeURIComponent(uri.pathname.slice(1));
  return id === "" ? null : id;
}

/** Checks `adapter.config`; throws an Error naming the bad key. */
export function parseConfig(config: unknown): Required<AdapterConfig> {
  const c = (config ?? {}) as Record<string, unknown>;
  if (typeof c !== "object" || Array.isArray(c)) throw new Error("adapter.config must be a mapping");
  const rooms = c.rooms ?? ["lobby"];
  if (!Array.isArray(rooms) || !rooms.every((r) => typeof r === "string" && r !== "")) {
    throw new Error(`adapter.config.rooms must be a list of room ids, got ${JSON.stringify(c.rooms)}`);
  }
  const echoUser = c.echoUser === undefined ? "echo" : c.echoUser;
  if (echoUser !== null && (typeof echoUser !== "string" || echoUser === "")) {
    throw new Error(`adapter.config.echoUser must be a user id or null, got ${JSON.stringify(c.echoUser)}`);
  }
  const accounts = c.accounts ?? {};
  if (typeof accounts !== "object" || accounts === null || Array.isArray(accounts)) {
    throw new Error(
      `adapter.config.accounts must be a mapping of username: password, got ${JSON.stringify(c.accounts)}`,
    );
  }
  for (const [name, password] of Object.entries(accounts)) {
    if (typeof password !== "string" || password === "") {
      throw new Error(`adapter.config.accounts.${name} must be a password (a string)`);
    }
  }
  return { rooms: rooms as string[], echoUser, accounts: accounts as Record<string, string> };
}

/**
 * Builds an adapter on a given network: tests use this to drive the network themselves.
 * Must not connect anywhere: that is start's job.
 */
export function createAdapter(network: InMemoryNetwork, config: unknown, log: Logger): Adapter {
  const { rooms, echoUser, accounts } = parseConfig(config);
  for (const [name, password] of Object.entries(accounts)) network.addAccount(name, password);
  for (const id of rooms) {
    network.addRoom(id);
    if (echoUser !== null) network.room(id)!.members.add(echoUser);
  }
  // The echo user is part of the simulated network (another client of it), not the adapter.
  if (echoUser !== null) startEchoUser(network, echoUser);
  return new Adapter(network, log);
}

/** The module's default export, which the framework loads (config `adapter.module`). */
export default defineAdapter<AdapterConfig | null | undefined>(({ config, log }) =>
  createAdapter(new InMemoryNetwork(), config, log),
);
