import { randomBytes } from "node:crypto";
import type { MatrixEvent, MatrixStateEvent } from "../matrix/events.js";
import type { Registration } from "../registration/types.js";
import { KeyedLock } from "../store/keyed-lock.js";
import { checkTs } from "./checks.js";
import { MatrixError } from "./matrix-error.js";
import { CLIENT_V3, enc, ServerEndpoints } from "./server-endpoints.js";
import type { Transport } from "./transport.js";
import type { CreateRoomOptions, ClientSendOptions, ClientStateOptions } from "./types.js";

/**
 * The endpoints of rooms: create, join, membership, sends, state, redactions, typing and
 * receipts. Sends, state events and redactions into one room are made in call order: each
 * waits until the previous one for that room has settled (retries included), while other
 * rooms go on. A send's txnId is fixed once per call and reused by every retry.
 */
export class RoomEndpoints extends ServerEndpoints {
  private readonly txnPrefix = randomBytes(6).toString("base64url");
  private txnCounter = 0;

  constructor(
    transport: Transport,
    /** Shared with the endpoints made by asRegistration and asUserToken. */
    private readonly roomOrder = new KeyedLock(),
  ) {
    super(transport);
  }

  /**
   * @internal These endpoints acting through another application service on the homeserver
   * (a double-puppet registration; see Transport.forRegistration). They share this client's
   * request queue, retries and hooks, and the order of sends per room, so a puppet's message
   * keeps its place among the ghosts'. Closing them closes this client too.
   */
  asRegistration(registration: Registration): RoomEndpoints {
    return new RoomEndpoints(this.transport.forRegistration(registration), this.roomOrder);
  }

  /** @internal These endpoints acting as one user with their own access token; shared like asRegistration's. */
  asUserToken(userId: string, accessToken: string): RoomEndpoints {
    return new RoomEndpoints(this.transport.forUserToken(userId, accessToken), this.roomOrder);
  }

  // ---- rooms -----------------------------------------------------------------------------

  /** Creates a room as a user; returns its id. */
  async createRoom(userId: string, options: CreateRoomOptions = {}): Promise<string> {
    const res = await this.call<{ room_id: string }>("POST", `${CLIENT_V3}/createRoom`, {
      userId,
      json: options,
    });
    return res.room_id;
  }

  /** Joins a room by id or alias; returns the room id. */
  async joinRoom(userId: string, roomIdOrAlias: string, viaServers: readonly string[] = []): Promise<string> {
    const query = viaServers.length > 0 ? `?${viaServers.map((s) => `via=${enc(s)}`).join("&")}` : "";
    const res = await this.call<{ room_id: string }>(
      "POST",
      `${CLIENT_V3}/join/${enc(roomIdOrAlias)}${query}`,
      { userId, json: {} },
    );
    return res.room_id;
  }

  async leaveRoom(userId: string, roomId: string, reason?: string): Promise<void> {
    await this.call("POST", `${CLIENT_V3}/rooms/${enc(roomId)}/leave`, {
      userId,
      json: withReason({}, reason),
    });
  }

  async invite(userId: string, roomId: string, target: string, reason?: string): Promise<void> {
    await this.membershipCall("invite", userId, roomId, target, reason);
  }

  async kick(userId: string, roomId: string, target: string, reason?: string): Promise<void> {
    await this.membershipCall("kick", userId, roomId, target, reason);
  }

  async ban(userId: string, roomId: string, target: string, reason?: string): Promise<void> {
    await this.membershipCall("ban", userId, roomId, target, reason);
  }

  async unban(userId: string, roomId: string, target: string, reason?: string): Promise<void> {
    await this.membershipCall("unban", userId, roomId, target, reason);
  }

  /**
   * Sends a message event; returns its event id. `ts` sets origin_server_ts; the txnId
   * (given or generated once for this call) is reused by every retry. Sends, state events
   * and redactions into one room are made in call order.
   */
  async sendEvent(
    userId: string,
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    opts: ClientSendOptions = {},
  ): Promise<string> {
    const prepared = this.prepareSend(userId, opts);
    return this.inRoomOrder(roomId, () => this.sendEventNow(userId, roomId, type, content, prepared));
  }

  /** Sets a state event; returns its event id. In room order with sends. */
  async sendState(
    userId: string,
    roomId: string,
    type: string,
    stateKey: string,
    content: Record<string, unknown>,
    opts: ClientStateOptions = {},
  ): Promise<string> {
    checkTs(opts.ts);
    this.assertMayActAs(userId);
    return this.inRoomOrder(roomId, () => this.sendStateNow(userId, roomId, type, stateKey, content, opts));
  }

  /**
   * Redacts an event; returns the redaction's event id. In room order with sends. `content`
   * adds keys to the redaction's content beside the reason.
   */
  async redact(
    userId: string,
    roomId: string,
    eventId: string,
    opts: { reason?: string; txnId?: string; content?: Record<string, unknown> } = {},
  ): Promise<string> {
    this.assertMayActAs(userId);
    const txnId = opts.txnId ?? this.newTxnId();
    return this.inRoomOrder(roomId, async () => {
      const res = await this.call<{ event_id: string }>(
        "PUT",
        `${CLIENT_V3}/rooms/${enc(roomId)}/redact/${enc(eventId)}/${enc(txnId)}`,
        { userId, json: withReason({ ...opts.content }, opts.reason) },
      );
      return res.event_id;
    });
  }

  /** The room's current state, as a member of it. */
  getState(userId: string, roomId: string): Promise<MatrixStateEvent[]> {
    return this.call("GET", `${CLIENT_V3}/rooms/${enc(roomId)}/state`, { userId });
  }

  /** One state event's content, or undefined if the room has none (404 M_NOT_FOUND). */
  async getStateEvent(
    userId: string,
    roomId: string,
    type: string,
    stateKey = "",
  ): Promise<Record<string, unknown> | undefined> {
    try {
      return await this.call("GET", `${CLIENT_V3}/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`, {
        userId,
      });
    } catch (err) {
      if (err instanceof MatrixError && err.status === 404) return undefined;
      throw err;
    }
  }

  /**
   * A page of the room's timeline as the user sees it (`/messages`): newest first with
   * `dir: "b"`. `end` is the token for the next page (absent at the timeline's end).
   */
  async messages(
    userId: string,
    roomId: string,
    opts: { dir: "b" | "f"; limit: number; from?: string },
  ): Promise<{ chunk: MatrixEvent[]; end?: string }> {
    const query: Record<string, string | number> = { dir: opts.dir, limit: opts.limit };
    if (opts.from !== undefined) query.from = opts.from;
    return this.call("GET", `${CLIENT_V3}/rooms/${enc(roomId)}/messages`, { userId, query });
  }

  async setTyping(userId: string, roomId: string, typing: boolean, timeoutMs = 30_000): Promise<void> {
    await this.call("PUT", `${CLIENT_V3}/rooms/${enc(roomId)}/typing/${enc(userId)}`, {
      userId,
      json: typing ? { typing: true, timeout: timeoutMs } : { typing: false },
    });
  }

  /** Marks an event read (`m.read`); `content` is the receipt's body (extra keys). */
  async sendReadReceipt(
    userId: string,
    roomId: string,
    eventId: string,
    content: Record<string, unknown> = {},
  ): Promise<void> {
    await this.call("POST", `${CLIENT_V3}/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, {
      userId,
      json: content,
    });
  }

  /** Waits for every room's sends, then for requests in flight, then fails any retry still waiting. */
  override async close(): Promise<void> {
    await this.roomOrder.settled();
    await super.close();
  }

  /** @internal Checks a send's arguments before any I/O and fixes its txnId for every retry. */
  prepareSend(userId: string, opts: ClientSendOptions): ClientSendOptions & { txnId: string } {
    checkTs(opts.ts);
    this.assertMayActAs(userId);
    if (opts.txnId !== undefined && (typeof opts.txnId !== "string" || opts.txnId === "")) {
      throw new TypeError("txnId must be a non-empty string");
    }
    return { ...opts, txnId: opts.txnId ?? this.newTxnId() };
  }

  /** @internal A send without room ordering; the caller holds the room's turn. */
  async sendEventNow(
    userId: string,
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    opts: ClientSendOptions & { txnId: string },
  ): Promise<string> {
    const res = await this.call<{ event_id: string }>(
      "PUT",
      `${CLIENT_V3}/rooms/${enc(roomId)}/send/${enc(type)}/${enc(opts.txnId)}`,
      { userId, query: { ts: opts.ts }, json: content },
    );
    return res.event_id;
  }

  /** @internal A state event without room ordering; the caller holds the room's turn. */
  async sendStateNow(
    userId: string,
    roomId: string,
    type: string,
    stateKey: string,
    content: Record<string, unknown>,
    opts: ClientStateOptions,
  ): Promise<string> {
    const res = await this.call<{ event_id: string }>(
      "PUT",
      `${CLIENT_V3}/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`,
      { userId, query: { ts: opts.ts }, json: content },
    );
    return res.event_id;
  }

  /**
   * @internal Runs `fn` after every earlier `inRoomOrder` call for the same room settled
   * (whatever their outcome). Only rooms with work pending have an entry.
   */
  inRoomOrder<T>(roomId: string, fn: () => Promise<T>): Promise<T> {
    return this.roomOrder.run(roomId, fn);
  }

  private newTxnId(): string {
    this.txnCounter += 1;
    return `bk.${this.txnPrefix}.${Date.now()}.${this.txnCounter}`;
  }

  private async membershipCall(
    action: "invite" | "kick" | "ban" | "unban",
    userId: string,
    roomId: string,
    target: string,
    reason: string | undefined,
  ): Promise<void> {
    await this.call("POST", `${CLIENT_V3}/rooms/${enc(roomId)}/${action}`, {
      userId,
      json: withReason({ user_id: target }, reason),
    });
  }
}

function withReason(json: Record<string, unknown>, reason: string | undefined): Record<string, unknown> {
  if (reason !== undefined) json.reason = reason;
  return json;
}
