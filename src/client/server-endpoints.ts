import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { NamespaceMatcher } from "../registration/namespaces.js";
import { positive } from "./checks.js";
import type { MatrixMedia, OpenedMedia } from "../adapter/adapter.js";
import { MediaTooLargeError } from "../media/errors.js";
import {
  DEFAULT_MEDIA_MAX_BYTES,
  openMedia as openMatrixMedia,
  parseMxc,
  type MediaSource,
  type OpenMediaOptions,
} from "../media/open-media.js";
import { readAll } from "../media/size-cap.js";
import { MatrixError, ResponseTooLargeError } from "./matrix-error.js";
import type { RetryPolicy } from "./retry.js";
import type { CallOptions, RawAnswer, Transport } from "./transport.js";
import type { DownloadedMedia, Presence, RegisterResult, UploadOptions } from "./types.js";

export const CLIENT_V3 = "/_matrix/client/v3";
export const enc = encodeURIComponent;

/**
 * The client-server endpoints outside one room's timeline: the server, users and profiles,
 * aliases and the directory, media. Every call goes through the Transport, which refuses a
 * user outside the namespace before any I/O. The rooms' endpoints extend this (RoomEndpoints),
 * and HomeserverClient extends those.
 */
export class ServerEndpoints {
  readonly matcher: NamespaceMatcher;
  readonly botUserId: string;
  readonly retryPolicy: RetryPolicy;
  protected readonly registrationId: string;

  constructor(protected readonly transport: Transport) {
    this.matcher = transport.matcher;
    this.botUserId = transport.botUserId;
    this.retryPolicy = transport.retryPolicy;
    this.registrationId = transport.registrationId;
  }

  /** @internal Throws UserNotInNamespaceError unless we may act as this user. No I/O. */
  assertMayActAs(userId: string): void {
    this.transport.assertMayActAs(userId);
  }

  /** Waits for requests in flight, then fails any retry still waiting. Later calls fail. */
  async close(): Promise<void> {
    await this.transport.close();
  }

  protected call<T>(method: string, path: string, opts?: CallOptions): Promise<T> {
    return this.transport.call<T>(method, path, opts);
  }

  // ---- server ----------------------------------------------------------------------------

  /** `GET /_matrix/client/versions`; `attempts` 1 for a quick reachability check without retries. */
  versions(
    opts: { attempts?: number } = {},
  ): Promise<{ versions: string[]; unstable_features?: Record<string, boolean> }> {
    return this.call(
      "GET",
      "/_matrix/client/versions",
      opts.attempts === undefined ? {} : { attempts: opts.attempts },
    );
  }

  /**
   * Asks the homeserver to ping this application service (`POST /_matrix/client/v1/appservice/{id}/ping`).
   * One attempt, no retries: a 502/504 answer says the homeserver cannot reach the bridge, which
   * retrying the same second does not change.
   */
  ping(transactionId?: string): Promise<{ duration_ms: number }> {
    return this.call("POST", `/_matrix/client/v1/appservice/${enc(this.registrationId)}/ping`, {
      json: transactionId === undefined ? {} : { transaction_id: transactionId },
      attempts: 1,
    });
  }

  /** `GET /account/whoami` as a user (default: the bot). */
  whoami(userId: string = this.botUserId): Promise<{ user_id: string; device_id?: string }> {
    return this.call("GET", `${CLIENT_V3}/account/whoami`, { userId });
  }

  // ---- devices (end-to-end encryption) -----------------------------------------------------

  /**
   * Creates a device of one of our users without `/login` (MSC4190: `PUT /devices/{deviceId}`
   * as the application service), or renames it if it exists. Needs a homeserver with MSC4190
   * (Synapse 1.141+).
   */
  async putDevice(userId: string, deviceId: string, displayName: string): Promise<void> {
    await this.call("PUT", `${CLIENT_V3}/devices/${enc(deviceId)}`, {
      json: { display_name: displayName },
      ...asUser(userId, this.botUserId),
    });
  }

  /**
   * A JSON request as one device of one of our users (device masquerading: `?user_id=` and
   * `?device_id=`, with MSC3202's unstable `org.matrix.msc3202.device_id` too), for the
   * requests the crypto machine makes (keys, to-device messages). `path` is the full path.
   */
  callAsDevice<T>(
    method: string,
    path: string,
    device: { userId: string; deviceId: string },
    json: unknown,
  ): Promise<T> {
    const { userId, query } = asUser(device.userId, this.botUserId);
    return this.call<T>(method, path, {
      userId,
      json,
      query: { ...query, device_id: device.deviceId, "org.matrix.msc3202.device_id": device.deviceId },
    });
  }

  // ---- users -----------------------------------------------------------------------------

  /**
   * Registers a user in the namespace (`m.login.application_service`, `inhibit_login`).
   * An existing user (`M_USER_IN_USE`) is not an error: `created` is false.
   */
  async register(userId: string): Promise<RegisterResult> {
    this.assertMayActAs(userId);
    const username = userId.slice(1, userId.indexOf(":"));
    try {
      await this.call("POST", `${CLIENT_V3}/register`, {
        json: { type: "m.login.application_service", username, inhibit_login: true },
      });
      return { userId, created: true };
    } catch (err) {
      if (err instanceof MatrixError && err.errcode === "M_USER_IN_USE") return { userId, created: false };
      throw err;
    }
  }

  async setDisplayName(userId: string, displayName: string): Promise<void> {
    await this.call("PUT", `${CLIENT_V3}/profile/${enc(userId)}/displayname`, {
      userId,
      json: { displayname: displayName },
    });
  }

  async setAvatarUrl(userId: string, avatarUrl: string): Promise<void> {
    await this.call("PUT", `${CLIENT_V3}/profile/${enc(userId)}/avatar_url`, {
      userId,
      json: { avatar_url: avatarUrl },
    });
  }

  /** Anyone's profile, read as the bot. */
  getProfile(target: string): Promise<{ displayname?: string; avatar_url?: string }> {
    return this.call("GET", `${CLIENT_V3}/profile/${enc(target)}`, { userId: this.botUserId });
  }

  async setPresence(userId: string, presence: Presence, statusMsg?: string): Promise<void> {
    const json: Record<string, unknown> = { presence };
    if (statusMsg !== undefined) json.status_msg = statusMsg;
    await this.call("PUT", `${CLIENT_V3}/presence/${enc(userId)}/status`, { userId, json });
  }

  // ---- aliases and directory -------------------------------------------------------------

  async createAlias(userId: string, alias: string, roomId: string): Promise<void> {
    await this.call("PUT", `${CLIENT_V3}/directory/room/${enc(alias)}`, {
      userId,
      json: { room_id: roomId },
    });
  }

  async deleteAlias(userId: string, alias: string): Promise<void> {
    await this.call("DELETE", `${CLIENT_V3}/directory/room/${enc(alias)}`, { userId });
  }

  /** The room an alias points at, or undefined if it points nowhere (404). */
  async resolveAlias(alias: string): Promise<{ roomId: string; servers: string[] } | undefined> {
    try {
      const res = await this.call<{ room_id: string; servers?: string[] }>(
        "GET",
        `${CLIENT_V3}/directory/room/${enc(alias)}`,
      );
      return { roomId: res.room_id, servers: res.servers ?? [] };
    } catch (err) {
      if (err instanceof MatrixError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Lists (or unlists) a room in the room directory of one remote network of this bridge. */
  async setRoomDirectoryVisibility(
    networkId: string,
    roomId: string,
    visibility: "public" | "private",
  ): Promise<void> {
    await this.call("PUT", `${CLIENT_V3}/directory/list/appservice/${enc(networkId)}/${enc(roomId)}`, {
      json: { visibility },
    });
  }

  // ---- media -----------------------------------------------------------------------------

  /** Uploads media as a user; returns its mxc:// URI. */
  async uploadMedia(userId: string, data: Uint8Array, opts: UploadOptions = {}): Promise<string> {
    const res = await this.call<{ content_uri: string }>("POST", "/_matrix/media/v3/upload", {
      userId,
      query: { filename: opts.filename },
      bytes: { data, contentType: opts.contentType ?? "application/octet-stream" },
    });
    return res.content_uri;
  }

  /**
   * Uploads a file of `size` bytes as a user, streamed from disk (each retry reads it again);
   * returns its mxc:// URI. A 413 (M_TOO_LARGE) is a MatrixError like any refusal.
   */
  async uploadFile(userId: string, path: string, size: number, opts: UploadOptions = {}): Promise<string> {
    const res = await this.call<{ content_uri: string }>("POST", "/_matrix/media/v3/upload", {
      userId,
      query: { filename: opts.filename },
      bytes: {
        data: () => Promise.resolve(Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>),
        contentType: opts.contentType ?? "application/octet-stream",
        length: size,
      },
    });
    return res.content_uri;
  }

  /**
   * The homeserver's media config (`m.upload.size`: the largest upload, when it says):
   * `GET /_matrix/client/v1/media/config`, or `/_matrix/media/v3/config` on servers without
   * authenticated media (404 or M_UNRECOGNIZED).
   */
  async mediaConfig(opts: { attempts?: number } = {}): Promise<{ "m.upload.size"?: number }> {
    const callOpts: CallOptions = opts.attempts === undefined ? {} : { attempts: opts.attempts };
    try {
      return await this.call("GET", "/_matrix/client/v1/media/config", callOpts);
    } catch (err) {
      if (!(err instanceof MatrixError) || (err.status !== 404 && err.errcode !== "M_UNRECOGNIZED"))
        throw err;
      return this.call("GET", "/_matrix/media/v3/config", callOpts);
    }
  }

  /**
   * Streams media by mxc:// URI (decrypted when `media` is encrypted MatrixMedia), through
   * authenticated media (`/_matrix/client/v1/media/download|thumbnail`), falling back to
   * `/_matrix/media/v3` when the homeserver answers 404 M_UNRECOGNIZED (it predates
   * authenticated media). Refuses more than `maxBytes` (default 100 MiB) up front from the
   * Content-Length, else by erroring the stream (MediaTooLargeError). The request holds a
   * slot of the client's concurrency only until the headers arrive: the body is read at the
   * caller's pace without holding one (so a slow reader cannot stall other requests); it stops
   * when read, cancelled, on `signal`, or when the client closes.
   */
  openMedia(
    media: string | MatrixMedia,
    opts: OpenMediaOptions & { userId?: string } = {},
  ): Promise<OpenedMedia> {
    const userId = opts.userId ?? this.botUserId;
    return openMatrixMedia(
      (mxc, asked) => this.fetchMedia(mxc, userId, asked),
      media,
      opts,
      DEFAULT_MEDIA_MAX_BYTES,
    );
  }

  /** The stored bytes of an mxc:// URL, unread (see openMedia). */
  private async fetchMedia(
    mxc: string,
    userId: string,
    asked: Parameters<MediaSource>[1],
  ): Promise<OpenedMedia> {
    const { server, mediaId } = parseMxc(mxc);
    const kind = asked.thumbnail === undefined ? "download" : "thumbnail";
    const tail = `${kind}/${enc(server)}/${enc(mediaId)}`;
    const callOpts: CallOptions = { raw: true, stream: true, userId, maxBytes: asked.maxBytes };
    if (asked.signal !== undefined) callOpts.signal = asked.signal;
    if (asked.thumbnail !== undefined) {
      callOpts.query = { width: asked.thumbnail.width, height: asked.thumbnail.height, method: "scale" };
    }
    let answer: RawAnswer;
    try {
      try {
        answer = await this.call<RawAnswer>("GET", `/_matrix/client/v1/media/${tail}`, callOpts);
      } catch (err) {
        if (!(err instanceof MatrixError && err.status === 404 && err.errcode === "M_UNRECOGNIZED"))
          throw err;
        answer = await this.call<RawAnswer>("GET", `/_matrix/media/v3/${tail}`, callOpts);
      }
    } catch (err) {
      if (err instanceof ResponseTooLargeError)
        throw new MediaTooLargeError(mxc, undefined, asked.maxBytes, "bridge (media.maxBytes)");
      throw err;
    }
    const out: OpenedMedia = {
      stream: answer.stream ?? new Blob([answer.body]).stream(),
      contentType: answer.headers.get("content-type") ?? "application/octet-stream",
    };
    const declared = answer.headers.get("content-length");
    if (declared !== null && /^\d+$/.test(declared)) out.size = Number(declared);
    return out;
  }

  /**
   * Downloads media by mxc:// URI whole into memory (openMedia, read to its end), through
   * authenticated media with the same fallback and cap.
   */
  async downloadMedia(
    mxc: string,
    opts: { userId?: string; maxBytes?: number } = {},
  ): Promise<DownloadedMedia> {
    const open: OpenMediaOptions & { userId?: string } = {};
    if (opts.userId !== undefined) open.userId = opts.userId;
    if (opts.maxBytes !== undefined) open.maxBytes = positive("maxBytes", opts.maxBytes);
    const media = await this.openMedia(mxc, open);
    return { data: await readAll(media.stream), contentType: media.contentType };
  }
}

/**
 * Acting as `userId`: the transport asserts `?user_id=` for anyone but the bot; the bot's
 * own id is sent too where a device is named, so the homeserver knows whose device it is.
 */
function asUser(userId: string, botUserId: string): { userId: string; query: Record<string, string> } {
  return { userId, query: userId === botUserId ? { user_id: userId } : {} };
}
