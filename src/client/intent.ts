import type { MatrixEvent, MatrixStateEvent } from "../matrix/events.js";
import { checkTs } from "./checks.js";
import type { RoomEndpoints } from "./room-endpoints.js";
import type { IntentState } from "./intent-state.js";
import { MatrixError } from "./matrix-error.js";
import type {
  CreateRoomOptions,
  DownloadedMedia,
  IntentSendOptions,
  Presence,
  ClientStateOptions,
  UploadOptions,
} from "./types.js";

/** In-flight ensureRegistered/ensureJoined calls, so concurrent callers share one; entries leave on settle. */
const inflight = new WeakMap<IntentState, Map<string, Promise<void>>>();

/**
 * One user the bridge acts as (a ghost or the bot), made by `client.intent(userId)`.
 * `ensureRegistered` and `ensureJoined` remember what they did in the store, so a restarted
 * bridge does not redo them; sending and setting state first make sure the user is
 * registered and joined. The client refuses users outside the namespace before any I/O.
 */
export class Intent {
  /** @internal Use `client.intent(userId)`. */
  constructor(
    readonly client: RoomEndpoints,
    readonly userId: string,
    private readonly state: IntentState,
  ) {}

  /** True for the bridge bot (the registration's sender_localpart). */
  get isBot(): boolean {
    return this.userId === this.client.botUserId;
  }

  /**
   * Registers the user unless the store says it already exists. No HTTP call the second time.
   * The bot too: Synapse accepts the sender's messages without it, but has no user row for it
   * until it is registered, and then fails profile changes with a 500.
   */
  async ensureRegistered(): Promise<void> {
    if (await this.state.isRegistered(this.userId)) return;
    await this.once(`registered ${this.userId}`, async () => {
      if (await this.state.isRegistered(this.userId)) return;
      await this.client.register(this.userId);
      await this.state.setRegistered(this.userId);
    });
  }

  /**
   * Makes the user a member of a room unless the store says it is one. When the homeserver
   * refuses the join (403, e.g. an invite-only room), the bot invites the user and it joins
   * again. The record is kept current by `client.observeEvent`.
   */
  async ensureJoined(roomId: string): Promise<void> {
    if (typeof roomId !== "string" || !roomId.startsWith("!")) {
      throw new TypeError(`ensureJoined needs a room id ("!…"), got "${String(roomId)}"`);
    }
    if ((await this.state.membership(roomId, this.userId)) === "join") return;
    await this.once(`member ${roomId} ${this.userId}`, async () => {
      if ((await this.state.membership(roomId, this.userId)) === "join") return;
      await this.ensureRegistered();
      try {
        await this.client.joinRoom(this.userId, roomId);
      } catch (err) {
        if (!(err instanceof MatrixError) || err.status !== 403 || this.isBot) throw err;
        await this.client.invite(this.client.botUserId, roomId, this.userId);
        await this.client.joinRoom(this.userId, roomId);
      }
      await this.state.setMembership(roomId, this.userId, "join");
    });
  }

  /** Sends an m.room.message; returns the event id. */
  sendMessage(
    roomId: string,
    content: Record<string, unknown>,
    opts: IntentSendOptions = {},
  ): Promise<string> {
    return this.sendEvent(roomId, "m.room.message", content, opts);
  }

  /** Sends a text message (`m.text`); returns the event id. */
  sendText(roomId: string, body: string, opts: IntentSendOptions = {}): Promise<string> {
    return this.sendMessage(roomId, { msgtype: "m.text", body }, opts);
  }

  /**
   * Sends a message event after ensureJoined; returns the event id. Keeps its place in the
   * room's order from the moment of the call, the join included.
   */
  async sendEvent(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    opts: IntentSendOptions = {},
  ): Promise<string> {
    const { externalUrl, ...sendOpts } = opts;
    const prepared = this.client.prepareSend(this.userId, sendOpts);
    const body = withExternalUrl(content, externalUrl);
    return this.client.inRoomOrder(roomId, async () => {
      await this.ensureJoined(roomId);
      return this.client.sendEventNow(this.userId, roomId, type, body, prepared);
    });
  }

  /** Sets a state event after ensureJoined; returns the event id. */
  async sendState(
    roomId: string,
    type: string,
    stateKey: string,
    content: Record<string, unknown>,
    opts: ClientStateOptions & { externalUrl?: string } = {},
  ): Promise<string> {
    const { externalUrl, ...stateOpts } = opts;
    checkTs(stateOpts.ts);
    this.client.assertMayActAs(this.userId);
    const body = withExternalUrl(content, externalUrl);
    return this.client.inRoomOrder(roomId, async () => {
      await this.ensureJoined(roomId);
      return this.client.sendStateNow(this.userId, roomId, type, stateKey, body, stateOpts);
    });
  }

  redact(roomId: string, eventId: string, opts: { reason?: string; txnId?: string } = {}): Promise<string> {
    return this.client.redact(this.userId, roomId, eventId, opts);
  }

  /** The display name the bridge last set for this user, if it set one. */
  displayName(): Promise<string | undefined> {
    return this.state.profileField(this.userId, "displayname");
  }

  /** Sets the display name unless the last one set is the same. Returns true if it was sent. */
  async setDisplayName(displayName: string): Promise<boolean> {
    return this.setProfileField("displayname", displayName, () =>
      this.client.setDisplayName(this.userId, displayName),
    );
  }

  /** Sets the avatar (an mxc:// URI) unless the last one set is the same. Returns true if it was sent. */
  async setAvatarUrl(avatarUrl: string): Promise<boolean> {
    return this.setProfileField("avatar_url", avatarUrl, () =>
      this.client.setAvatarUrl(this.userId, avatarUrl),
    );
  }

  /** Creates a room with this user as creator; records the creator as joined. */
  async createRoom(options: CreateRoomOptions = {}): Promise<string> {
    await this.ensureRegistered();
    const roomId = await this.client.createRoom(this.userId, options);
    await this.state.setMembership(roomId, this.userId, "join");
    return roomId;
  }

  /** Joins by id or alias (no record check; use ensureJoined for room ids). Returns the room id. */
  async join(roomIdOrAlias: string, viaServers: readonly string[] = []): Promise<string> {
    await this.ensureRegistered();
    const roomId = await this.client.joinRoom(this.userId, roomIdOrAlias, viaServers);
    await this.state.setMembership(roomId, this.userId, "join");
    return roomId;
  }

  async leave(roomId: string, reason?: string): Promise<void> {
    await this.client.leaveRoom(this.userId, roomId, reason);
    await this.state.setMembership(roomId, this.userId, "leave");
  }

  invite(roomId: string, target: string, reason?: string): Promise<void> {
    return this.client.invite(this.userId, roomId, target, reason);
  }

  kick(roomId: string, target: string, reason?: string): Promise<void> {
    return this.client.kick(this.userId, roomId, target, reason);
  }

  ban(roomId: string, target: string, reason?: string): Promise<void> {
    return this.client.ban(this.userId, roomId, target, reason);
  }

  getState(roomId: string): Promise<MatrixStateEvent[]> {
    return this.client.getState(this.userId, roomId);
  }

  getStateEvent(roomId: string, type: string, stateKey = ""): Promise<Record<string, unknown> | undefined> {
    return this.client.getStateEvent(this.userId, roomId, type, stateKey);
  }

  /** A page of the room's timeline as this user sees it (see RoomEndpoints.messages). */
  messages(
    roomId: string,
    opts: { dir: "b" | "f"; limit: number; from?: string },
  ): Promise<{ chunk: MatrixEvent[]; end?: string }> {
    return this.client.messages(this.userId, roomId, opts);
  }

  setTyping(roomId: string, typing: boolean, timeoutMs?: number): Promise<void> {
    return this.client.setTyping(this.userId, roomId, typing, timeoutMs);
  }

  sendReadReceipt(roomId: string, eventId: string): Promise<void> {
    return this.client.sendReadReceipt(this.userId, roomId, eventId);
  }

  async setPresence(presence: Presence, statusMsg?: string): Promise<void> {
    await this.ensureRegistered();
    await this.client.setPresence(this.userId, presence, statusMsg);
  }

  async uploadMedia(data: Uint8Array, opts: UploadOptions = {}): Promise<string> {
    await this.ensureRegistered();
    return this.client.uploadMedia(this.userId, data, opts);
  }

  downloadMedia(mxc: string, opts: { maxBytes?: number } = {}): Promise<DownloadedMedia> {
    return this.client.downloadMedia(mxc, { ...opts, userId: this.userId });
  }

  createAlias(alias: string, roomId: string): Promise<void> {
    return this.client.createAlias(this.userId, alias, roomId);
  }

  deleteAlias(alias: string): Promise<void> {
    return this.client.deleteAlias(this.userId, alias);
  }

  whoami(): Promise<{ user_id: string; device_id?: string }> {
    return this.client.whoami(this.userId);
  }

  private async setProfileField(
    field: "displayname" | "avatar_url",
    value: string,
    send: () => Promise<void>,
  ): Promise<boolean> {
    if (typeof value !== "string") throw new TypeError(`${field} must be a string, got ${String(value)}`);
    if ((await this.state.profileField(this.userId, field)) === value) return false;
    await this.ensureRegistered();
    await send();
    await this.state.setProfileField(this.userId, field, value);
    return true;
  }

  /** Runs `fn` once for concurrent callers with the same key. */
  private once(key: string, fn: () => Promise<void>): Promise<void> {
    let map = inflight.get(this.state);
    if (map === undefined) {
      map = new Map();
      inflight.set(this.state, map);
    }
    const running = map.get(key);
    if (running !== undefined) return running;
    const p = fn().finally(() => map.delete(key));
    map.set(key, p);
    return p;
  }
}

function withExternalUrl(
  content: Record<string, unknown>,
  externalUrl: string | undefined,
): Record<string, unknown> {
  if (externalUrl === undefined) return content;
  if (typeof externalUrl !== "string" || !/^https?:\/\//i.test(externalUrl)) {
    throw new TypeError(`externalUrl must be an http(s) URL, got "${String(externalUrl)}"`);
  }
  return { ...content, external_url: externalUrl };
}
