/**
 * A stand-in for the {{network}} network: an in-memory chat service with users, accounts,
 * rooms, direct chats and messages, so the bridge runs and its tests pass before any real
 * network code exists.
 *
 * Replace it with the network's client library (or a thin wrapper around it). The adapter
 * (adapter.ts, logins.ts) only needs what a real client gives: a connection that reports what
 * happens in rooms (`NetworkEvent`), calls that post, edit, delete and react, and for users'
 * own accounts a sign-in with a password that gives a token to connect with.
 *
 * Two kinds of connection:
 * - an app connection (`connect`), like a bot API: it acts as any user it names, and hears
 *   what happens in every room except direct chats;
 * - an account's connection (`connectAccount`, with a token from `signIn`): it acts as that
 *   account only, and also hears the direct chats the account is in.
 * Each connection sees what the others do, never its own actions: the bridge's connection
 * is told about remote users' messages, not about the ones it relayed from Matrix (no echo).
 */

/** A message in a room, as the network stores it. */
export interface RemoteMessage {
  id: string;
  room: string;
  from: string;
  text: string;
  /** True for an action ("/me waves"). */
  action?: boolean;
  /** The id of the message this one replies to. */
  replyTo?: string;
  /** A file that came with the message. */
  attachment?: { name: string; contentType: string; size: number };
  /** When it was posted, in milliseconds. */
  ts: number;
  edited?: boolean;
}

/** What a connection is told about; `from`/`user` is always a network user id. */
export type NetworkEvent =
  | { type: "message"; message: RemoteMessage }
  | { type: "edit"; room: string; from: string; id: string; text: string; ts: number }
  | { type: "delete"; room: string; from: string; id: string }
  | { type: "reaction"; room: string; from: string; id: string; target: string; key: string; ts: number }
  | { type: "typing"; room: string; from: string; typing: boolean }
  | { type: "join" | "leave"; room: string; user: string }
  | { type: "room-info"; room: string; from: string; name?: string; topic?: string }
  | { type: "profile"; user: string; displayName: string };

/** A sign-in the network refused, or a token it no longer accepts. */
export class AuthError extends Error {}

/** The room an event happened in (none for a profile change). */
export function roomOf(event: NetworkEvent): string | undefined {
  return event.type === "message" ? event.message.room : event.type === "profile" ? undefined : event.room;
}

/** The network user who did it. */
export function authorOf(event: NetworkEvent): string {
  if (event.type === "message") return event.message.from;
  return "from" in event ? event.from : event.user;
}

export interface RemoteRoom {
  id: string;
  name: string;
  topic: string;
  /** Network users in the room. */
  members: Set<string>;
  /** The latest messages, oldest first; at most `historyLimit` of them. */
  history: RemoteMessage[];
  /** Per user: the id of the last message they read. */
  readUpTo: Map<string, string>;
  /** Users typing now. */
  typing: Set<string>;
  /** A one-to-one chat of two users (see openDM): only their own connections hear it. */
  direct: boolean;
}

export interface RemoteUser {
  id: string;
  displayName: string;
}

export type NetworkListener = (event: NetworkEvent) => void;

/** What a connected client can do. Every call acts as the given network user. */
export interface NetworkConnection {
  /** Posts a message; returns its id. Throws if the room does not exist. */
  post(
    room: string,
    from: string,
    text: string,
    opts?: Pick<RemoteMessage, "action" | "replyTo" | "attachment">,
  ): string;
  /** Replaces a message's text; returns false if there is no such message. */
  edit(room: string, from: string, id: string, text: string): boolean;
  /** Deletes a message or reaction; returns false if there is none. */
  remove(room: string, from: string, id: string): boolean;
  /** Reacts to a message; returns the reaction's id. */
  react(room: string, from: string, target: string, key: string): string;
  setTyping(room: string, from: string, typing: boolean): void;
  markRead(room: string, user: string, id: string): void;
  join(room: string, user: string): void;
  leave(room: string, user: string): void;
  setRoomInfo(room: string, from: string, info: { name?: string; topic?: string }): void;
  setProfile(user: string, displayName: string): void;
  /** Opens (or finds) the direct chat of `from` and `user`; returns its room id. Throws for an unknown user. */
  openDM(from: string, user: string): string;
  /** Stops delivering events to this connection. */
  close(): void;
}

export interface InMemoryNetworkOptions {
  /** Messages kept per room (default 1000); older ones are forgotten. */
  historyLimit?: number;
  /** Rooms at most (default 10000); creating more throws. */
  maxRooms?: number;
}

export class InMemoryNetwork {
  private readonly rooms = new Map<string, RemoteRoom>();
  private readonly users = new Map<string, RemoteUser>();
  /** Connected listeners, each with the account it acts as (undefined: an app connection). */
  private readonly listeners = new Map<NetworkListener, string | undefined>();
  /** Accounts by user id: the password, and the token of the latest sign-in (if not revoked). */
  private readonly accounts = new Map<string, { password: string; token?: string }>();
  private readonly historyLimit: number;
  private readonly maxRooms: number;
  private counter = 0;

  constructor(opts: InMemoryNetworkOptions = {}) {
    this.historyLimit = opts.historyLimit ?? 1000;
    this.maxRooms = opts.maxRooms ?? 10_000;
  }

  /** Creates a room (or returns the existing one). */
  addRoom(id: string, info: { name?: string; topic?: string } = {}): RemoteRoom {
    const existing = this.rooms.get(id);
    if (existing) return existing;
    if (this.rooms.size >= this.maxRooms) throw new Error(`the network has ${this.maxRooms} rooms already`);
    const room: RemoteRoom = {
      id,
      name: info.name ?? id,
      topic: info.topic ?? "",
      members: new Set(),
      history: [],
      readUpTo: new Map(),
      typing: new Set(),
      direct: false,
    };
    this.rooms.set(id, room);
    return room;
  }

  /** Creates a user (or updates their display name). Users are never removed. */
  addUser(id: string, displayName = id): RemoteUser {
    const user = { id, displayName };
    this.users.set(id, user);
    return user;
  }

  /** Creates a user with an account people can sign in to with `password`. */
  addAccount(id: string, password: string, displayName = id): RemoteUser {
    this.accounts.set(id, { password });
    return this.addUser(id, displayName);
  }

  /** Signs in to an account: a token to connect with (one per account: a new sign-in replaces it). */
  signIn(id: string, password: string): string {
    const account = this.accounts.get(id);
    if (account?.password !== password) throw new AuthError("wrong username or password");
    account.token = `${id}.${++this.counter}.${Math.random().toString(36).slice(2)}`;
    return account.token;
  }

  /** Signs out: the token no longer connects. */
  revoke(token: string): void {
    for (const account of this.accounts.values()) if (account.token === token) delete account.token;
  }

  /** Connects as the account the token belongs to; throws an AuthError for an unknown or revoked token. */
  connectAccount(token: string, listener: NetworkListener): NetworkConnection {
    const entry = [...this.accounts].find(([, a]) => a.token !== undefined && a.token === token);
    if (!entry) throw new AuthError("the token is not valid (signed out?)");
    return this.connect(listener, entry[0]);
  }

  room(id: string): RemoteRoom | undefined {
    return this.rooms.get(id);
  }

  user(id: string): RemoteUser | undefined {
    return this.users.get(id);
  }

  /** The rooms whose id or name contains `text` (case-insensitive). */
  findRooms(text: string): RemoteRoom[] {
    const needle = text.toLowerCase();
    return [...this.rooms.values()].filter(
      (r) => r.id.toLowerCase().includes(needle) || r.name.toLowerCase().includes(needle),
    );
  }

  /** A room's kept messages, oldest first (empty for an unknown room). */
  messages(room: string): RemoteMessage[] {
    return [...(this.rooms.get(room)?.history ?? [])];
  }

  /**
   * Connects a client; `listener` hears what every other connection does (direct chats only
   * when it is one of their users). With `account` (see connectAccount), every call must act
   * as that account.
   */
  connect(listener: NetworkListener, account?: string): NetworkConnection {
    this.listeners.set(listener, account);
    const emit = (event: NetworkEvent) => {
      const room = roomOf(event);
      const direct = room === undefined ? undefined : this.rooms.get(room);
      for (const [other, as] of this.listeners) {
        if (other === listener) continue;
        if (direct?.direct && (as === undefined || !direct.members.has(as))) continue;
        other(event);
      }
    };
    const actAs = (from: string) => {
      if (account !== undefined && from !== account)
        throw new Error(`this connection acts as ${account}, not as ${from}`);
    };
    const roomNamed = (id: string, from?: string): RemoteRoom => {
      if (from !== undefined) actAs(from);
      const room = this.rooms.get(id);
      if (!room) throw new Error(`no room "${id}" on the network`);
      return room;
    };
    return {
      post: (room, from, text, opts = {}) => {
        const r = roomNamed(room, from);
        const message: RemoteMessage = {
          id: `m${++this.counter}`,
          room,
          from,
          text,
          ts: Date.now(),
          ...opts,
        };
        r.history.push(message);
        if (r.history.length > this.historyLimit) r.history.shift();
        emit({ type: "message", message: { ...message } });
        return message.id;
      },
      edit: (room, from, id, text) => {
        const message = roomNamed(room, from).history.find((m) => m.id === id);
        if (!message) return false;
        message.text = text;
        message.edited = true;
        emit({ type: "edit", room, from, id, text, ts: Date.now() });
        return true;
      },
      remove: (room, from, id) => {
        const r = roomNamed(room, from);
        const i = r.history.findIndex((m) => m.id === id);
        if (i < 0) return false;
        r.history.splice(i, 1);
        emit({ type: "delete", room, from, id });
        return true;
      },
      react: (room, from, target, key) => {
        const r = roomNamed(room, from);
        const id = `m${++this.counter}`;
        // Reactions are kept as messages too, so that they can be deleted by id.
        r.history.push({ id, room, from, text: key, replyTo: target, ts: Date.now() });
        if (r.history.length > this.historyLimit) r.history.shift();
        emit({ type: "reaction", room, from, id, target, key, ts: Date.now() });
        return id;
      },
      setTyping: (room, from, typing) => {
        const r = roomNamed(room, from);
        if (typing === r.typing.has(from)) return;
        if (typing) r.typing.add(from);
        else r.typing.delete(from);
        emit({ type: "typing", room, from, typing });
      },
      markRead: (room, user, id) => {
        roomNamed(room).readUpTo.set(user, id);
      },
      join: (room, user) => {
        const r = roomNamed(room, user);
        if (r.members.has(user)) return;
        r.members.add(user);
        emit({ type: "join", room, user });
      },
      leave: (room, user) => {
        if (!roomNamed(room, user).members.delete(user)) return;
        emit({ type: "leave", room, user });
      },
      setRoomInfo: (room, from, info) => {
        const r = roomNamed(room, from);
        if (info.name !== undefined) r.name = info.name;
        if (info.topic !== undefined) r.topic = info.topic;
        emit({ type: "room-info", room, from, ...info });
      },
      setProfile: (user, displayName) => {
        this.addUser(user, displayName);
        emit({ type: "profile", user, displayName });
      },
      openDM: (from, user) => {
        actAs(from);
        if (!this.users.has(user)) throw new Error(`no user "${user}" on the network`);
        const id = `dm:${[from, user].sort().join(":")}`;
        const room = this.addRoom(id, { name: `${from} and ${user}` });
        room.direct = true;
        room.members.add(from).add(user);
        return id;
      },
      close: () => {
        this.listeners.delete(listener);
      },
    };
  }
}

/**
 * A demo: network user `id` repeats every message posted in rooms it is a member of, so a
 * freshly generated bridge answers when you talk to it. Returns the connection (close it to stop).
 */
export function startEchoUser(network: InMemoryNetwork, id: string): NetworkConnection {
  network.addUser(id, `${id} (echo)`);
  const connection: NetworkConnection = network.connect((event) => {
    if (event.type !== "message" || event.message.from === id) return;
    if (!network.room(event.message.room)?.members.has(id)) return;
    const { room, text, id: replyTo } = event.message;
    // Answer after the listeners heard the message itself, so that everyone sees them in order.
    queueMicrotask(() => connection.post(room, id, text, { replyTo }));
  });
  return connection;
}
