/**
 * A small in-process fake Matrix homeserver for the bridge's tests: node:http on 127.0.0.1,
 * a random port. It implements the part of the client-server API a bridge uses (register,
 * rooms, joins, messages, redactions, state, aliases, profiles, media, typing, receipts) and
 * checks what a real homeserver checks: the application service's token, and that a ghost
 * was registered before it acts. It keeps every room's timeline so tests can assert what
 * reached "Matrix". It is not a Matrix implementation; test against a real homeserver too.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeEvent {
  event_id: string;
  room_id: string;
  type: string;
  sender: string;
  state_key?: string;
  content: Record<string, unknown>;
  origin_server_ts: number;
}

export interface FakeRoom {
  roomId: string;
  /** user id -> membership */
  members: Map<string, string>;
  /** "type\0stateKey" -> event */
  state: Map<string, FakeEvent>;
  timeline: FakeEvent[];
}

type Answer = [status: number, body: unknown];
type Route = [method: string, path: RegExp, handle: (req: Req, m: string[]) => Answer];
interface Req {
  userId: string;
  json: Record<string, unknown>;
  body: Buffer;
  query: URLSearchParams;
  contentType: string;
}

const MAX_BODY = 16 * 1024 * 1024;
const C = "^/_matrix/client/v3";

export class FakeHomeserver {
  readonly rooms = new Map<string, FakeRoom>();
  readonly aliases = new Map<string, string>();
  readonly registered = new Set<string>();
  readonly profiles = new Map<string, Record<string, unknown>>();
  readonly media = new Map<string, { data: Buffer; contentType: string }>();
  url = "";
  private readonly txns = new Map<string, string>();
  private readonly routes: Route[] = this.buildRoutes();
  private counter = 0;

  private constructor(
    private readonly server: Server,
    private readonly asToken: string,
    readonly domain: string,
    readonly botUserId: string,
  ) {
    this.registered.add(botUserId);
  }

  /** Starts one for a registration's `as_token` and `sender_localpart`. */
  static async start(opts: {
    asToken: string;
    domain: string;
    botLocalpart: string;
  }): Promise<FakeHomeserver> {
    const server = createServer();
    const hs = new FakeHomeserver(server, opts.asToken, opts.domain, `@${opts.botLocalpart}:${opts.domain}`);
    server.on("request", (req, res) => {
      hs.handle(req, res).catch((err: unknown) =>
        send(res, 500, { errcode: "M_UNKNOWN", error: String(err) }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    hs.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return hs;
  }

  /** The room an alias points to, if any. */
  roomByAlias(alias: string): FakeRoom | undefined {
    const roomId = this.aliases.get(alias);
    return roomId === undefined ? undefined : this.rooms.get(roomId);
  }

  /** A room's events of one type, oldest first. */
  events(roomId: string, type: string): FakeEvent[] {
    return (this.rooms.get(roomId)?.timeline ?? []).filter((e) => e.type === type);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) return send(res, 413, { errcode: "M_TOO_LARGE", error: "body too large" });
      chunks.push(chunk as Buffer);
    }
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/_matrix/client/versions") return send(res, 200, { versions: ["v1.11"] });
    if (req.headers.authorization === undefined) {
      return send(res, 401, { errcode: "M_MISSING_TOKEN", error: "Missing access token" });
    }
    if (req.headers.authorization !== `Bearer ${this.asToken}`) {
      return send(res, 403, { errcode: "M_UNKNOWN_TOKEN", error: "Unrecognised access token" });
    }
    let json: Record<string, unknown> = {};
    const contentType = req.headers["content-type"] ?? "";
    if (contentType.includes("json") && body.length > 0) {
      try {
        json = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
      } catch {
        return send(res, 400, { errcode: "M_NOT_JSON", error: "body is not JSON" });
      }
    }
    const userId = url.searchParams.get("user_id") ?? this.botUserId;
    const r: Req = { userId, json, body, query: url.searchParams, contentType };
    if (url.pathname !== "/_matrix/client/v3/register" && !this.registered.has(userId)) {
      return send(res, 403, { errcode: "M_FORBIDDEN", error: `${userId} is not registered` });
    }
    const download = /^\/_matrix\/client\/v1\/media\/download\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (req.method === "GET" && download) {
      const item = this.media.get(
        `mxc://${decodeURIComponent(download[1]!)}/${decodeURIComponent(download[2]!)}`,
      );
      if (!item) return send(res, 404, { errcode: "M_NOT_FOUND", error: "no such media" });
      res.writeHead(200, { "Content-Type": item.contentType, "Content-Length": item.data.length });
      res.end(item.data);
      return;
    }
    for (const [method, re, handle] of this.routes) {
      const m = method === req.method ? re.exec(url.pathname) : null;
      if (m) {
        const [status, out] = handle(
          r,
          m.map((g) => decodeURIComponent(g ?? "")),
        );
        return send(res, status, out);
      }
    }
    send(res, 404, { errcode: "M_UNRECOGNIZED", error: `no route ${req.method} ${url.pathname}` });
  }

  private addEvent(
    room: FakeRoom,
    r: Req,
    type: string,
    content: Record<string, unknown>,
    stateKey?: string,
  ) {
    const ts = r.query.get("ts");
    const event: FakeEvent = {
      event_id: `$${++this.counter}-${randomUUID()}`,
      room_id: room.roomId,
      type,
      sender: r.userId,
      content,
      origin_server_ts: ts !== null ? Number(ts) : Date.now(),
    };
    if (stateKey !== undefined) {
      event.state_key = stateKey;
      room.state.set(`${type}\0${stateKey}`, event);
    }
    room.timeline.push(event);
    return event;
  }

  private setMembership(room: FakeRoom, r: Req, target: string, membership: string): void {
    room.members.set(target, membership);
    this.addEvent(room, r, "m.room.member", { membership }, target);
  }

  private buildRoutes(): Route[] {
    const notFound = (error: string): Answer => [404, { errcode: "M_NOT_FOUND", error }];
    const forbidden = (error: string): Answer => [403, { errcode: "M_FORBIDDEN", error }];
    const joined = (roomId: string, userId: string): FakeRoom | Answer => {
      const room = this.rooms.get(roomId);
      if (!room) return notFound(`no room ${roomId}`);
      return room.members.get(userId) === "join" ? room : forbidden(`${userId} is not in ${roomId}`);
    };
    const isAnswer = (x: FakeRoom | Answer): x is Answer => Array.isArray(x);
    const member = (action: string, membership: string): Route => [
      "POST",
      new RegExp(`${C}/rooms/([^/]+)/${action}$`),
      (r, m) => {
        const room = joined(m[1]!, r.userId);
        if (isAnswer(room)) return room;
        this.setMembership(room, r, String(r.json.user_id), membership);
        return [200, {}];
      },
    ];
    return [
      [
        "POST",
        new RegExp(`${C}/register$`),
        (r) => {
          if (r.json.type !== "m.login.application_service")
            return [400, { errcode: "M_BAD_JSON", error: "type" }];
          const userId = `@${String(r.json.username)}:${this.domain}`;
          if (this.registered.has(userId))
            return [400, { errcode: "M_USER_IN_USE", error: "User ID already taken." }];
          this.registered.add(userId);
          return [200, { user_id: userId }];
        },
      ],
      ["GET", new RegExp(`${C}/account/whoami$`), (r) => [200, { user_id: r.userId }]],
      [
        "POST",
        new RegExp(`${C}/createRoom$`),
        (r) => {
          const aliasName = r.json.room_alias_name as string | undefined;
          const alias = aliasName !== undefined ? `#${aliasName}:${this.domain}` : undefined;
          if (alias !== undefined && this.aliases.has(alias))
            return [400, { errcode: "M_ROOM_IN_USE", error: "alias taken" }];
          const roomId = `!r${++this.counter}:${this.domain}`;
          const room: FakeRoom = { roomId, members: new Map(), state: new Map(), timeline: [] };
          this.rooms.set(roomId, room);
          this.addEvent(room, r, "m.room.create", { creator: r.userId }, "");
          this.setMembership(room, r, r.userId, "join");
          if (typeof r.json.name === "string")
            this.addEvent(room, r, "m.room.name", { name: r.json.name }, "");
          if (typeof r.json.topic === "string")
            this.addEvent(room, r, "m.room.topic", { topic: r.json.topic }, "");
          for (const u of (r.json.invite as string[] | undefined) ?? [])
            this.setMembership(room, r, u, "invite");
          if (alias !== undefined) this.aliases.set(alias, roomId);
          return [200, { room_id: roomId }];
        },
      ],
      [
        "POST",
        new RegExp(`${C}/join/([^/]+)$`),
        (r, m) => {
          const roomId = m[1]!.startsWith("#") ? this.aliases.get(m[1]!) : m[1]!;
          const room = roomId === undefined ? undefined : this.rooms.get(roomId);
          if (!room) return notFound("no such room");
          if (room.members.get(r.userId) === "ban") return forbidden("banned");
          this.setMembership(room, r, r.userId, "join");
          return [200, { room_id: room.roomId }];
        },
      ],
      [
        "POST",
        new RegExp(`${C}/rooms/([^/]+)/leave$`),
        (r, m) => {
          const room = this.rooms.get(m[1]!);
          if (!room) return notFound("no such room");
          this.setMembership(room, r, r.userId, "leave");
          return [200, {}];
        },
      ],
      member("invite", "invite"),
      member("kick", "leave"),
      member("ban", "ban"),
      [
        "PUT",
        new RegExp(`${C}/rooms/([^/]+)/send/([^/]+)/([^/]+)$`),
        (r, m) => {
          const room = joined(m[1]!, r.userId);
          if (isAnswer(room)) return room;
          const key = `${r.userId} ${m[3]!}`; // the same txnId from the same user is one event
          const seen = this.txns.get(key);
          if (seen !== undefined) return [200, { event_id: seen }];
          const event = this.addEvent(room, r, m[2]!, r.json);
          this.txns.set(key, event.event_id);
          return [200, { event_id: event.event_id }];
        },
      ],
      [
        "PUT",
        new RegExp(`${C}/rooms/([^/]+)/redact/([^/]+)/([^/]+)$`),
        (r, m) => {
          const room = joined(m[1]!, r.userId);
          if (isAnswer(room)) return room;
          const event = this.addEvent(room, r, "m.room.redaction", { redacts: m[2]!, ...r.json });
          return [200, { event_id: event.event_id }];
        },
      ],
      [
        "PUT",
        new RegExp(`${C}/rooms/([^/]+)/state/([^/]+)/?(.*)$`),
        (r, m) => {
          const room = joined(m[1]!, r.userId);
          if (isAnswer(room)) return room;
          return [200, { event_id: this.addEvent(room, r, m[2]!, r.json, m[3] ?? "").event_id }];
        },
      ],
      [
        "GET",
        new RegExp(`${C}/rooms/([^/]+)/state$`),
        (_r, m) => {
          const room = this.rooms.get(m[1]!);
          return room ? [200, [...room.state.values()]] : notFound("no such room");
        },
      ],
      [
        "GET",
        new RegExp(`${C}/rooms/([^/]+)/state/([^/]+)/?(.*)$`),
        (_r, m) => {
          const event = this.rooms.get(m[1]!)?.state.get(`${m[2]!}\0${m[3] ?? ""}`);
          return event ? [200, event.content] : notFound("Event not found.");
        },
      ],
      [
        "GET",
        new RegExp(`${C}/rooms/([^/]+)/joined_members$`),
        (_r, m) => {
          const room = this.rooms.get(m[1]!);
          if (!room) return notFound("no such room");
          const joined: Record<string, object> = {};
          for (const [user, membership] of room.members) if (membership === "join") joined[user] = {};
          return [200, { joined }];
        },
      ],
      [
        "PUT",
        new RegExp(`${C}/directory/room/([^/]+)$`),
        (r, m) => {
          if (this.aliases.has(m[1]!))
            return [409, { errcode: "M_UNKNOWN", error: "Room alias already exists" }];
          this.aliases.set(m[1]!, String(r.json.room_id));
          return [200, {}];
        },
      ],
      [
        "GET",
        new RegExp(`${C}/directory/room/([^/]+)$`),
        (_r, m) => {
          const roomId = this.aliases.get(m[1]!);
          return roomId
            ? [200, { room_id: roomId, servers: [this.domain] }]
            : notFound("Room alias not found");
        },
      ],
      ["PUT", new RegExp(`${C}/directory/list/appservice/([^/]+)/([^/]+)$`), () => [200, {}]],
      [
        "PUT",
        new RegExp(`${C}/profile/([^/]+)/(displayname|avatar_url)$`),
        (r, m) => {
          if (m[1] !== r.userId) return forbidden("cannot set another user's profile");
          this.profiles.set(m[1], { ...this.profiles.get(m[1]), ...r.json });
          return [200, {}];
        },
      ],
      [
        "GET",
        new RegExp(`${C}/profile/([^/]+)$`),
        (_r, m) => {
          const profile = this.profiles.get(m[1]!);
          return profile ? [200, profile] : notFound("Profile was not found");
        },
      ],
      ["PUT", new RegExp(`${C}/rooms/([^/]+)/typing/([^/]+)$`), () => [200, {}]],
      ["POST", new RegExp(`${C}/rooms/([^/]+)/receipt/([^/]+)/([^/]+)$`), () => [200, {}]],
      ["PUT", new RegExp(`${C}/presence/([^/]+)/status$`), () => [200, {}]],
      ["POST", /^\/_matrix\/client\/v1\/appservice\/([^/]+)\/ping$/, () => [200, { duration_ms: 1 }]],
      [
        "POST",
        /^\/_matrix\/media\/v3\/upload$/,
        (r) => {
          const mxc = `mxc://${this.domain}/m${++this.counter}`;
          this.media.set(mxc, { data: r.body, contentType: r.contentType });
          return [200, { content_uri: mxc }];
        },
      ],
    ];
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}
