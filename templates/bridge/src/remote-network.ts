/**
 * A stand-in for the {{network}} network: an in-memory chat service with users, rooms and
 * messages, so the bridge runs and its tests pass before any real network code exists.
 *
 * Replace it with the network's client library (or a thin wrapper around it). The adapter
 * (adapter.ts) only needs what a real client gives: a connection that reports what happens
 * in rooms (`NetworkEvent`), and calls that post, edit, delete and react as a user.
 *
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
  private readonly listeners = new Set<NetworkListener>();
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

  /** Connects a client; `listener` hears what every other connection does. */
  connect(listener: NetworkListener): NetworkConnection {
    this.listeners.add(listener);
    const emit = (event: NetworkEvent) => {
      for (const other of this.listeners) if (other !== listener) other(event);
    };
    const roomOf = (id: string): RemoteRoom => {
      const room = this.rooms.get(id);
      if (!room) throw new Error(`no room "${id}" on the network`);
      return room;
    };
    return {
      post: (room, from, text, opts = {}) => {
        const r = roomOf(room);
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
        const message = roomOf(room).history.find((m) => m.id === id);
        if (!message) return false;
        message.text = text;
        message.edited = true;
        emit({ type: "edit", room, from, id, text, ts: Date.now() });
        return true;
      },
      remove: (room, from, id) => {
        const r = roomOf(room);
        const i = r.history.findIndex((m) => m.id === id);
        if (i < 0) return false;
        r.history.splice(i, 1);
        emit({ type: "delete", room, from, id });
        return true;
      },
      react: (room, from, target, key) => {
        const r = roomOf(room);
        const id = `m${++this.counter}`;
        // Reactions are kept as messages too, so that they can be deleted by id.
        r.history.push({ id, room, from, text: key, replyTo: target, ts: Date.now() });
        if (r.history.length > this.historyLimit) r.history.shift();
        emit({ type: "reaction", room, from, id, target, key, ts: Date.now() });
        return id;
      },
      setTyping: (room, from, typing) => {
        const r = roomOf(room);
        if (typing === r.typing.has(from)) return;
        if (typing) r.typing.add(from);
        else r.typing.delete(from);
        emit({ type: "typing", room, from, typing });
      },
      markRead: (room, user, id) => {
        roomOf(room).readUpTo.set(user, id);
      },
      join: (room, user) => {
        const r = roomOf(room);
        if (r.members.has(user)) return;
        r.members.add(user);
        emit({ type: "join", room, user });
      },
      leave: (room, user) => {
        if (!roomOf(room).members.delete(user)) return;
        emit({ type: "leave", room, user });
      },
      setRoomInfo: (room, from, info) => {
        const r = roomOf(room);
        if (info.name !== undefined) r.name = info.name;
        if (info.topic !== undefined) r.topic = info.topic;
        emit({ type: "room-info", room, from, ...info });
      },
      setProfile: (user, displayName) => {
        this.addUser(user, displayName);
        emit({ type: "profile", user, displayName });
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
