/**
 * An in-process BridgeContext that records what an adapter asks the framework to do, for
 * testing an adapter's remote side (against a real IRC or XMPP server) without a homeserver.
 * The same adapters are proven end to end against Synapse through the real bridge elsewhere.
 */
import { EventEmitter } from "node:events";
import type {
  CallContext,
  AdapterKeyValue,
  BridgeContext,
  GhostDirectory,
  MatrixMedia,
  MessageContent,
  OpenedMedia,
  Portal,
  PortalDirectory,
  PortalSpec,
  RemoteProfile,
  SendOptions,
} from "../adapter/index.js";
import { IdTemplate } from "../registration/index.js";
import { silentLogger } from "../common/logger.js";
import { MediaLinks, type MediaLinkOptions, type MediaLinkSource } from "../media/media-links.js";
import {
  DEFAULT_MEDIA_MAX_BYTES,
  openMedia as openMatrixMedia,
  parseMxc,
  type MediaSource,
  type OpenMediaOptions,
} from "../media/open-media.js";
import { readAll } from "../media/size-cap.js";

/** One recorded call: the method name and its arguments. */
export interface RecordedCall {
  method: string;
  room?: string;
  from?: string;
  args: unknown[];
}

/** How a RecordingContext names things: its domain, id templates and media link base. */
export interface RecordingContextOptions {
  /** The homeserver's server name (default example.org). */
  domain?: string;
  /** The ghost id template (default "test_{id}"). */
  ghosts?: string;
  /** The portal alias template (default "test_{id}"). */
  portals?: string;
  /** The base of ctx.mediaLink's links (default https://bridge.example.org). */
  mediaPublicUrl?: string;
}

export class RecordingContext implements BridgeContext {
  readonly calls: RecordedCall[] = [];
  readonly log = silentLogger();
  readonly domain: string;
  readonly ghosts: GhostDirectory;
  readonly portals: PortalDirectory;
  readonly kv: AdapterKeyValue;
  private readonly events = new EventEmitter();
  private readonly kvData = new Map<string, unknown>();
  private readonly portalMap = new Map<string, Portal>();
  private readonly links: MediaLinks;
  private readonly media = new Map<string, { data: Uint8Array; contentType: string }>();
  /** The size cap of openMedia and downloadMedia (config media.maxBytes on the real bridge). */
  mediaMaxBytes = DEFAULT_MEDIA_MAX_BYTES;

  constructor(opts: RecordingContextOptions = {}) {
    this.domain = opts.domain ?? "example.org";
    this.links = new MediaLinks({
      publicUrl: opts.mediaPublicUrl ?? "https://bridge.example.org",
      linkKey: "recording-context-media-link-key",
      ttlMs: 7 * 24 * 3600_000,
    });
    const ghostT = new IdTemplate(opts.ghosts ?? "test_{id}", this.domain);
    const portalT = new IdTemplate(opts.portals ?? "test_{id}", this.domain);
    this.ghosts = { userId: (id) => ghostT.userId(id), remoteId: (u) => ghostT.parseUserId(u) };
    const ensure = (remoteId: string): Portal => {
      let p = this.portalMap.get(remoteId);
      if (!p) {
        p = {
          remoteId,
          roomId: `!${this.portalMap.size + 1}:${this.domain}`,
          alias: portalT.alias(remoteId),
        };
        this.portalMap.set(remoteId, p);
      }
      return p;
    };
    this.portals = {
      get: (id) => Promise.resolve(this.portalMap.get(id) ?? null),
      byRoomId: (roomId) =>
        Promise.resolve([...this.portalMap.values()].find((p) => p.roomId === roomId) ?? null),
      ensure: (id, spec?: PortalSpec) => {
        void this.record("ensurePortal", id, undefined, [spec]);
        return Promise.resolve(ensure(id));
      },
      aliasFor: (id) => portalT.alias(id),
    };
    this.kv = {
      get: <V>(k: string) => Promise.resolve(this.kvData.get(k) as V | undefined),
      set: (k, v) => Promise.resolve(void this.kvData.set(k, v)),
      delete: (k) => Promise.resolve(this.kvData.delete(k)),
    };
  }

  /** The portal of a remote room, creating a fake one; for handing to on* handlers in tests. */
  portal(remoteId: string): Portal {
    const existing = this.portalMap.get(remoteId);
    if (existing) return existing;
    const p: Portal = { remoteId, roomId: `!${this.portalMap.size + 1}:${this.domain}` };
    this.portalMap.set(remoteId, p);
    return p;
  }

  /**
   * Resolves with the first call (already recorded or future) matching `predicate`; rejects
   * after `timeoutMs` listing what was recorded, so a failing test says what did happen.
   */
  waitFor(predicate: (call: RecordedCall) => boolean, timeoutMs = 10_000): Promise<RecordedCall> {
    const found = this.calls.find(predicate);
    if (found) return Promise.resolve(found);
    // One listener for the whole wait, so calls recorded in the same tick are all seen.
    return new Promise((resolve, reject) => {
      const onCall = (call: RecordedCall) => {
        if (!predicate(call)) return;
        cleanup();
        resolve(call);
      };
      const timer = setTimeout(() => {
        cleanup();
        const seen = this.calls.map((c) => `${c.method}(${JSON.stringify(c.args)})`).join("\n  ");
        reject(new Error(`no matching call within ${timeoutMs} ms; recorded:\n  ${seen || "(nothing)"}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.events.off("call", onCall);
      };
      this.events.on("call", onCall);
    });
  }

  /** Records one call (and wakes waitFor); subclasses record their own methods with it. */
  protected record(
    method: string,
    room: string | undefined,
    from: string | undefined,
    args: unknown[],
  ): Promise<void> {
    const call: RecordedCall = { method, args };
    if (room !== undefined) call.room = room;
    if (from !== undefined) call.from = from;
    this.calls.push(call);
    this.events.emit("call", call);
    return Promise.resolve();
  }

  send(room: string, from: string, content: MessageContent, opts?: SendOptions) {
    return this.record("send", room, from, [content, opts]);
  }
  edit(room: string, from: string, target: string, content: MessageContent, opts?: SendOptions) {
    return this.record("edit", room, from, [target, content, opts]);
  }
  redact(room: string, from: string, target: string, reason?: string) {
    return this.record("redact", room, from, [target, reason]);
  }
  react(room: string, from: string, target: string, key: string, opts?: SendOptions) {
    return this.record("react", room, from, [target, key, opts]);
  }
  typing(room: string, from: string, typing: boolean) {
    return this.record("typing", room, from, [typing]);
  }
  markRead(room: string, message: string, opts: { user: string }) {
    return this.record("markRead", room, opts.user, [message]);
  }
  setPresence(user: string, presence: "online" | "unavailable" | "offline", statusMsg?: string) {
    return this.record("setPresence", undefined, user, [presence, statusMsg]);
  }
  join(room: string, user: string) {
    return this.record("join", room, user, []);
  }
  leave(room: string, user: string, reason?: string) {
    return this.record("leave", room, user, [reason]);
  }
  setProfile(user: string, profile: RemoteProfile) {
    return this.record("setProfile", undefined, user, [profile]);
  }
  setRoomInfo(room: string, info: Pick<PortalSpec, "name" | "topic" | "avatarUrl">, from?: string) {
    return this.record("setRoomInfo", room, from, [info]);
  }
  remoteNetworkUp(): void {
    void this.record("remoteNetworkUp", undefined, undefined, []);
  }
  /** Recorded as a call; the real bridge fetches the room's history with fetchHistory. */
  backfill(room: string): Promise<void> {
    return this.record("backfill", room, undefined, []);
  }
  /**
   * Serves `data` at an mxc:// URL to openMedia and downloadMedia. For an encrypted file,
   * register the ciphertext under the MatrixFile's url: openMedia decrypts it as the real
   * bridge does. Returns the URL.
   */
  addMedia(mxcUrl: string, data: Uint8Array, contentType = "application/octet-stream"): string {
    parseMxc(mxcUrl);
    this.media.set(mxcUrl, { data, contentType });
    return mxcUrl;
  }

  /**
   * The registered media (see addMedia), whole into memory; an unregistered URL gets the
   * text "media <url>" (text/plain), as before addMedia existed.
   */
  async downloadMedia(mxcUrl: string): Promise<{ data: Uint8Array; contentType: string }> {
    void this.record("downloadMedia", undefined, undefined, [mxcUrl]);
    if (!this.media.has(mxcUrl)) {
      return { data: new TextEncoder().encode(`media ${mxcUrl}`), contentType: "text/plain" };
    }
    const media = await this.serveMedia(mxcUrl, {});
    return { data: await readAll(media.stream), contentType: media.contentType };
  }

  /**
   * Media registered with addMedia, with the real rules: the size cap (`mediaMaxBytes`,
   * default 100 MiB, or opts.maxBytes), decryption of encrypted MatrixMedia (a file or its
   * thumbnail). A thumbnail asked for (opts.thumbnail) is the file itself. An unregistered URL rejects, like the homeserver's 404.
   */
  openMedia(
    media: string | MatrixMedia,
    opts: { maxBytes?: number; thumbnail?: { width: number; height: number }; signal?: AbortSignal } = {},
  ): Promise<OpenedMedia> {
    void this.record("openMedia", undefined, undefined, [media, opts]);
    return this.serveMedia(media, opts);
  }

  private serveMedia(media: string | MatrixMedia, opts: OpenMediaOptions): Promise<OpenedMedia> {
    const source: MediaSource = (mxc) => {
      const item = this.media.get(mxc);
      if (!item)
        return Promise.reject(new Error(`no media at ${mxc} (register it with RecordingContext.addMedia)`));
      return Promise.resolve({
        stream: new Blob([item.data]).stream(),
        contentType: item.contentType,
        size: item.data.byteLength,
      });
    };
    return openMatrixMedia(source, media, opts, this.mediaMaxBytes);
  }
  /** A real signed link (as the bridge makes them) under `mediaPublicUrl`; recorded. */
  mediaLink(media: MediaLinkSource, opts?: MediaLinkOptions): string {
    void this.record("mediaLink", undefined, undefined, [media, opts]);
    return this.links.link(media, opts);
  }
}

/**
 * A CallContext for calling an adapter's handlers in tests, as the framework would: a signal
 * that aborts after `timeoutMs` (never, by default) and a logger that writes nothing.
 */
export function testCall(timeoutMs?: number): CallContext {
  return {
    signal: timeoutMs === undefined ? new AbortController().signal : AbortSignal.timeout(timeoutMs),
    log: silentLogger(),
  };
}
