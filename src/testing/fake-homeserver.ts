/**
 * An in-process fake homeserver for fast unit tests: node:http on 127.0.0.1 with a random
 * port. It records every request, lets a test script answers (429, 500, 403, M_USER_IN_USE,
 * delays), and implements enough of the client-server API to be useful: register, whoami,
 * createRoom (with aliases and invites), join / leave / invite / kick / ban, send (deduplicated
 * by user and txnId, `?ts=` honoured), state, aliases, profiles, media, and accepts typing,
 * receipts, presence, directory visibility and the appservice ping.
 *
 * It checks `Authorization: Bearer <asToken>` like Synapse (401 without, 403 when wrong),
 * rejects `?access_token=`, and refuses acting as an unregistered ghost (403), so tests see
 * what a real homeserver would do. Not a Matrix implementation: no auth rules beyond joins.
 * For double puppeting it also knows other application services (`addAppservice`: their
 * as_token acts as the users their regex matches) and users' own access tokens
 * (`addAccessToken`: requests act as the token's owner, `?user_id=` ignored).
 *
 *   const hs = await FakeHomeserver.start({ asToken, domain: "example.org", botLocalpart: "bot" });
 *   hs.script({ method: "PUT", path: /\/send\// }, { status: 429, body: { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 5 } });
 *   ... hs.requests ...
 *   await hs.close();
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  /** The decoded path without the query string. */
  path: string;
  /** The raw (still percent-encoded) path. */
  rawPath: string;
  query: URLSearchParams;
  headers: IncomingMessage["headers"];
  /** The parsed JSON body, or undefined for none or non-JSON. */
  json: unknown;
  /** The raw body bytes. */
  body: Buffer;
  /** The user the request acts as: ?user_id= or the bot. */
  userId: string;
  /** When the request arrived (Date.now()). */
  at: number;
}

export interface ScriptedAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Destroy the connection instead of answering (a connection error for the client). */
  destroy?: boolean;
}

export interface ScriptMatcher {
  method?: string;
  /** A substring or regex of the decoded path. */
  path?: string | RegExp;
  /** Only requests acting as this user. */
  userId?: string;
}

interface Script {
  matcher: ScriptMatcher;
  answer: ScriptedAnswer;
  remaining: number;
}

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
  creator: string;
  joinRule: "public" | "invite";
  /** user id -> membership */
  members: Map<string, string>;
  /** "type\0stateKey" -> event */
  state: Map<string, FakeEvent>;
  /** Message and state events in order. */
  timeline: FakeEvent[];
}

export interface FakeHomeserverOptions {
  asToken: string;
  domain?: string;
  botLocalpart?: string;
}

/** `m` holds the route's captured path segments, percent-decoded. */
type Handler = (req: RecordedRequest, m: string[]) => [number, unknown];

const MAX_BODY = 10 * 1024 * 1024;

/** `/_matrix/(client/v1/media|media/v3)/(download|thumbnail)/{server}/{id}`. */
const MEDIA_PATH = /^\/_matrix\/(client\/v1\/media|media\/v3)\/(?:download|thumbnail)\/([^/]+)\/([^/]+)$/;

export class FakeHomeserver {
  readonly requests: RecordedRequest[] = [];
  readonly registered = new Set<string>();
  readonly rooms = new Map<string, FakeRoom>();
  readonly aliases = new Map<string, string>();
  readonly profiles = new Map<string, { displayname?: string; avatar_url?: string }>();
  readonly media = new Map<string, { data: Buffer; contentType: string }>();
  /** Answer /_matrix/client/v1/media/... with 404 M_UNRECOGNIZED, as a server without authenticated media does. */
  mediaV1Missing = false;
  /** Send media without Content-Length (chunked), so that only the bytes read tell the size. */
  mediaWithoutLength = false;
  /** Room ids listed per network: "networkId roomId" -> visibility. */
  readonly directory = new Map<string, string>();
  readonly domain: string;
  readonly botUserId: string;
  url = "";

  private readonly scripts: Script[] = [];
  private readonly appservices: Array<{ asToken: string; users: RegExp; sender: string }> = [];
  private readonly accessTokens = new Map<string, string>();
  private readonly txns = new Map<string, string>();
  private readonly routes: Array<[string, RegExp, Handler]>;
  private counter = 0;

  private constructor(
    private readonly server: Server,
    private readonly opts: FakeHomeserverOptions,
  ) {
    this.domain = opts.domain ?? "example.org";
    this.botUserId = `@${opts.botLocalpart ?? "bot"}:${this.domain}`;
    this.registered.add(this.botUserId);
    this.routes = this.buildRoutes();
  }

  static async start(opts: FakeHomeserverOptions): Promise<FakeHomeserver> {
    const server = createServer();
    const hs = new FakeHomeserver(server, opts);
    server.on("request", (req, res) => {
      hs.handle(req, res).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(JSON.stringify({ errcode: "M_UNKNOWN", error: String(err) }));
      });
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

  /** Forgets every scripted answer not yet used: the homeserver behaves normally again. */
  clearScripts(): void {
    this.scripts.length = 0;
  }

  /** Answers the next `times` requests matching `matcher` with `answer` instead of the default. */
  script(matcher: ScriptMatcher, answer: ScriptedAnswer, times = 1): void {
    this.scripts.push({ matcher, answer, remaining: times });
  }

  /** Requests whose method and decoded path match. */
  requestsTo(method: string, path: string | RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && matchPath(r.path, path));
  }

  /** Creates a room directly (no HTTP), e.g. an invite-only room a ghost may not join. */
  createRoomDirect(creator: string, joinRule: "public" | "invite" = "public"): string {
    const roomId = `!r${++this.counter}:${this.domain}`;
    this.rooms.set(roomId, {
      roomId,
      creator,
      joinRule,
      members: new Map([[creator, "join"]]),
      state: new Map(),
      timeline: [],
    });
    return roomId;
  }

  /**
   * Another application service (e.g. a double-puppet registration): its as_token may act as
   * its sender and, with `?user_id=`, as registered users that `users` matches (else 403).
   */
  addAppservice(asToken: string, users: RegExp, senderLocalpart: string): void {
    this.appservices.push({ asToken, users, sender: `@${senderLocalpart}:${this.domain}` });
  }

  /** A user's own access token: requests with it act as `userId`. Registers the user. */
  addAccessToken(token: string, userId: string): void {
    this.accessTokens.set(token, userId);
    this.registered.add(userId);
  }

  /** Logs a token out: later requests with it get M_UNKNOWN_TOKEN. */
  revokeAccessToken(token: string): void {
    this.accessTokens.delete(token);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? "/", "http://x");
    const path = decodeURIComponent(url.pathname);
    let json: unknown;
    try {
      json = body.length > 0 ? JSON.parse(body.toString("utf8")) : undefined;
    } catch {
      json = undefined;
    }
    const auth = req.headers.authorization;
    const token = auth?.startsWith("Bearer ") ? auth.slice("Bearer ".length) : undefined;
    const owner = token === undefined ? undefined : this.accessTokens.get(token);
    const appservice = this.appservices.find((a) => a.asToken === token);
    const rec: RecordedRequest = {
      method: req.method ?? "GET",
      path,
      rawPath: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      json,
      body,
      userId: owner ?? url.searchParams.get("user_id") ?? appservice?.sender ?? this.botUserId,
      at: Date.now(),
    };
    this.requests.push(rec);

    const scripted = this.takeScript(rec);
    if (scripted) {
      if (scripted.delayMs) await new Promise((r) => setTimeout(r, scripted.delayMs));
      if (scripted.destroy) {
        req.socket.destroy();
        return;
      }
      send(res, scripted.status, scripted.body ?? {}, scripted.headers);
      return;
    }
    if (path === "/_matrix/client/versions") {
      send(res, 200, { versions: ["v1.11", "v1.12"] });
      return;
    }
    if (url.searchParams.has("access_token")) {
      send(res, 400, { errcode: "M_UNKNOWN", error: "fake homeserver refuses query-string tokens" });
      return;
    }
    if (auth === undefined) {
      send(res, 401, { errcode: "M_MISSING_TOKEN", error: "Missing access token" });
      return;
    }
    if (auth !== `Bearer ${this.opts.asToken}` && owner === undefined && appservice === undefined) {
      send(res, 403, { errcode: "M_UNKNOWN_TOKEN", error: "Unrecognised access token" });
      return;
    }
    if (appservice !== undefined && rec.userId !== appservice.sender && !appservice.users.test(rec.userId)) {
      send(res, 403, {
        errcode: "M_FORBIDDEN",
        error: `Application service cannot masquerade as this user (${rec.userId}).`,
      });
      return;
    }
    const ts = url.searchParams.get("ts");
    if (ts !== null && !/^\d+$/.test(ts)) {
      send(res, 400, { errcode: "M_INVALID_PARAM", error: "ts must be an integer" });
      return;
    }
    const isRegister = path === "/_matrix/client/v3/register";
    if (!isRegister && !this.registered.has(rec.userId)) {
      send(res, 403, { errcode: "M_FORBIDDEN", error: "Application service has not registered this user" });
      return;
    }
    for (const [method, re, handler] of this.routes) {
      if (method !== rec.method) continue;
      const m = re.exec(rec.rawPath);
      if (m) {
        const [status, out] = handler(
          rec,
          m.map((g) => (g === undefined ? "" : decodeURIComponent(g))),
        );
        send(res, status, out);
        return;
      }
    }
    const media = MEDIA_PATH.exec(rec.rawPath);
    if (rec.method === "GET" && media) {
      this.serveMedia(res, media[1] === "client/v1/media", media[2]!, media[3]!);
      return;
    }
    send(res, 404, { errcode: "M_UNRECOGNIZED", error: `fake homeserver: no route ${rec.method} ${path}` });
  }

  /**
   * Media downloads and thumbnails (the thumbnail is the file itself), authenticated
   * (/_matrix/client/v1/media) and, for older clients, /_matrix/media/v3. With `mediaV1Missing`
   * the authenticated ones answer 404 M_UNRECOGNIZED, like a server that predates them.
   */
  private serveMedia(res: ServerResponse, v1: boolean, server: string, id: string): void {
    if (v1 && this.mediaV1Missing) {
      send(res, 404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });
      return;
    }
    const item = this.media.get(`mxc://${decodeURIComponent(server)}/${decodeURIComponent(id)}`);
    if (!item) {
      send(res, 404, { errcode: "M_NOT_FOUND", error: "no such media" });
      return;
    }
    const headers: Record<string, string | number> = { "Content-Type": item.contentType };
    if (!this.mediaWithoutLength) headers["Content-Length"] = item.data.length;
    res.writeHead(200, headers);
    // In pieces, so that a reader sees the body arrive as a stream.
    for (let at = 0; at < item.data.length; at += 16 * 1024)
      res.write(item.data.subarray(at, at + 16 * 1024));
    res.end();
  }

  private takeScript(rec: RecordedRequest): ScriptedAnswer | undefined {
    const i = this.scripts.findIndex(
      (s) =>
        (s.matcher.method === undefined || s.matcher.method === rec.method) &&
        (s.matcher.path === undefined || matchPath(rec.path, s.matcher.path)) &&
        (s.matcher.userId === undefined || s.matcher.userId === rec.userId),
    );
    if (i < 0) return undefined;
    const s = this.scripts[i]!;
    if (--s.remaining <= 0) this.scripts.splice(i, 1);
    return s.answer;
  }

  private room(roomId: string): FakeRoom | undefined {
    return this.rooms.get(roomId);
  }

  private addEvent(
    room: FakeRoom,
    rec: RecordedRequest,
    type: string,
    content: Record<string, unknown>,
    stateKey?: string,
  ): FakeEvent {
    const ts = rec.query.get("ts");
    const event: FakeEvent = {
      event_id: `$e${++this.counter}`,
      room_id: room.roomId,
      type,
      sender: rec.userId,
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

  private setMembership(room: FakeRoom, rec: RecordedRequest, target: string, membership: string): void {
    room.members.set(target, membership);
    this.addEvent(room, rec, "m.room.member", { membership }, target);
  }

  private buildRoutes(): Array<[string, RegExp, Handler]> {
    const C = "^/_matrix/client/v3";
    const forbidden = (error: string): [number, unknown] => [403, { errcode: "M_FORBIDDEN", error }];
    const notFound = (error: string): [number, unknown] => [404, { errcode: "M_NOT_FOUND", error }];
    const member = (action: string, membership: string): [string, RegExp, Handler] => [
      "POST",
      new RegExp(`${C}/rooms/([^/]+)/${action}$`),
      (rec, m) => {
        const room = this.room(m[1]!);
        if (!room) return notFound("no such room");
        if (room.members.get(rec.userId) !== "join") return forbidden("not in the room");
        const target = (rec.json as { user_id?: string }).user_id!;
        if (action === "invite" && room.members.get(target) === "join")
          return forbidden(`${target} is already in the room`);
        this.setMembership(room, rec, target, membership);
        return [200, {}];
      },
    ];
    return [
      [
        "POST",
        new RegExp(`${C}/register$`),
        (rec) => {
          const body = rec.json as { type?: string; username?: string; inhibit_login?: boolean };
          if (body.type !== "m.login.application_service")
            return [400, { errcode: "M_BAD_JSON", error: "type" }];
          const userId = `@${body.username}:${this.domain}`;
          if (this.registered.has(userId))
            return [400, { errcode: "M_USER_IN_USE", error: "User ID already taken." }];
          this.registered.add(userId);
          return [200, { user_id: userId }];
        },
      ],
      ["GET", new RegExp(`${C}/account/whoami$`), (rec) => [200, { user_id: rec.userId }]],
      [
        "POST",
        new RegExp(`${C}/createRoom$`),
        (rec) => {
          const body = (rec.json ?? {}) as {
            room_alias_name?: string;
            invite?: string[];
            preset?: string;
            name?: string;
            topic?: string;
            initial_state?: Array<{ type: string; state_key?: string; content: Record<string, unknown> }>;
          };
          const alias = body.room_alias_name ? `#${body.room_alias_name}:${this.domain}` : undefined;
          if (alias && this.aliases.has(alias))
            return [400, { errcode: "M_ROOM_IN_USE", error: "alias taken" }];
          const roomId = this.createRoomDirect(
            rec.userId,
            body.preset === "public_chat" ? "public" : "invite",
          );
          const room = this.rooms.get(roomId)!;
          this.addEvent(room, rec, "m.room.create", { creator: rec.userId }, "");
          for (const e of body.initial_state ?? [])
            this.addEvent(room, rec, e.type, e.content, e.state_key ?? "");
          if (body.name !== undefined) this.addEvent(room, rec, "m.room.name", { name: body.name }, "");
          if (body.topic !== undefined) this.addEvent(room, rec, "m.room.topic", { topic: body.topic }, "");
          for (const u of body.invite ?? []) this.setMembership(room, rec, u, "invite");
          if (alias) this.aliases.set(alias, roomId);
          return [200, { room_id: roomId }];
        },
      ],
      [
        "POST",
        new RegExp(`${C}/join/([^/]+)$`),
        (rec, m) => {
          const target = m[1]!;
          const roomId = target.startsWith("#") ? this.aliases.get(target) : target;
          const room = roomId === undefined ? undefined : this.room(roomId);
          if (!room) return notFound("no such room");
          const current = room.members.get(rec.userId);
          if (current === "ban") return forbidden("banned");
          if (room.joinRule === "invite" && current !== "invite" && current !== "join") {
            return forbidden("You are not invited to this room.");
          }
          this.setMembership(room, rec, rec.userId, "join");
          return [200, { room_id: room.roomId }];
        },
      ],
      [
        "POST",
        new RegExp(`${C}/rooms/([^/]+)/leave$`),
        (rec, m) => {
          const room = this.room(m[1]!);
          if (!room) return notFound("no such room");
          this.setMembership(room, rec, rec.userId, "leave");
          return [200, {}];
        },
      ],
      member("invite", "invite"),
      member("kick", "leave"),
      member("ban", "ban"),
      member("unban", "leave"),
      [
        "PUT",
        new RegExp(`${C}/rooms/([^/]+)/send/([^/]+)/([^/]+)$`),
        (rec, m) => {
          const room = this.room(m[1]!);
          if (!room) return notFound("no such room");
          if (room.members.get(rec.userId) !== "join") return forbidden(`${rec.userId} is not in the room`);
          const key = `${rec.userId} ${m[3]!}`;
          const seen = this.txns.get(key);
          if (seen !== undefined) return [200, { event_id: seen }];
          const event = this.addEvent(room, rec, m[2]!, (rec.json ?? {}) as Record<string, unknown>);
          this.txns.set(key, event.event_id);
          return [200, { event_id: event.event_id }];
        },
      ],
      [
        "PUT",
        new RegExp(`${C}/rooms/([^/]+)/redact/([^/]+)/([^/]+)$`),
        (rec, m) => {
          const room = this.room(m[1]!);
          if (!room) return notFound("no such room");
          const event = this.addEvent(room, rec, "m.room.redaction", {
            redacts: m[2]!,
            ...(rec.json as object),
          });
          return [200, { event_id: event.event_id }];
        },
      ],
      [
        "PUT",
        new RegExp(`${C}/rooms/([^/]+)/state/([^/]+)/?(.*)$`),
        (rec, m) => {
          const room = this.room(m[1]!);
          if (!room) return notFound("no such room");
          if (room.members.get(rec.userId) !== "join") return forbidden(`${rec.userId} is not in the room`);
          const event = this.addEvent(
            room,
            rec,
            m[2]!,
            (rec.json ?? {}) as Record<string, unknown>,
            m[3] ?? "",
          );
          return [200, { event_id: event.event_id }];
        },
      ],
      [
        "GET",
        new RegExp(`${C}/rooms/([^/]+)/state$`),
        (rec, m) => {
          const room = this.room(m[1]!);
          if (!room) return notFound("no such room");
          return [200, [...room.state.values()]];
        },
      ],
      [
        "GET",
        new RegExp(`${C}/rooms/([^/]+)/state/([^/]+)/?(.*)$`),
        (rec, m) => {
          const event = this.room(m[1]!)?.state.get(`${m[2]!}\0${m[3] ?? ""}`);
          return event ? [200, event.content] : notFound("Event not found.");
        },
      ],
      [
        "PUT",
        new RegExp(`${C}/directory/room/([^/]+)$`),
        (rec, m) => {
          if (this.aliases.has(m[1]!))
            return [409, { errcode: "M_UNKNOWN", error: "Room alias already exists" }];
          this.aliases.set(m[1]!, (rec.json as { room_id: string }).room_id);
          return [200, {}];
        },
      ],
      [
        "GET",
        new RegExp(`${C}/directory/room/([^/]+)$`),
        (rec, m) => {
          const roomId = this.aliases.get(m[1]!);
          return roomId
            ? [200, { room_id: roomId, servers: [this.domain] }]
            : notFound("Room alias not found");
        },
      ],
      [
        "DELETE",
        new RegExp(`${C}/directory/room/([^/]+)$`),
        (rec, m) => (this.aliases.delete(m[1]!) ? [200, {}] : notFound("Room alias not found")),
      ],
      [
        "PUT",
        new RegExp(`${C}/directory/list/appservice/([^/]+)/([^/]+)$`),
        (rec, m) => {
          this.directory.set(`${m[1]!} ${m[2]!}`, (rec.json as { visibility: string }).visibility);
          return [200, {}];
        },
      ],
      [
        "PUT",
        new RegExp(`${C}/profile/([^/]+)/(displayname|avatar_url)$`),
        (rec, m) => {
          if (m[1] !== rec.userId) return forbidden("cannot set another user's profile");
          const profile = this.profiles.get(m[1]) ?? {};
          Object.assign(profile, rec.json);
          this.profiles.set(m[1], profile);
          return [200, {}];
        },
      ],
      [
        "GET",
        new RegExp(`${C}/profile/([^/]+)$`),
        (rec, m) => {
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
        (rec) => {
          const mxc = `mxc://${this.domain}/m${++this.counter}`;
          this.media.set(mxc, { data: rec.body, contentType: String(rec.headers["content-type"]) });
          return [200, { content_uri: mxc }];
        },
      ],
    ];
  }
}

function matchPath(path: string, want: string | RegExp): boolean {
  return typeof want === "string" ? path.includes(want) : want.test(path);
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error(`request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
