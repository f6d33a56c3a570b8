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
  MessageContent,
  Portal,
  PortalDirectory,
  PortalSpec,
  RemoteProfile,
  SendOptions,
} from "../adapter/index.js";
import { IdTemplate } from "../registration/index.js";
import { silentLogger } from "../common/logger.js";
import { MediaLinks, type MediaLinkOptions, type MediaLinkSource } from "../media/media-links.js";

/** One recorded call: the method name and its arguments. */
export interface RecordedCall {
  method: string;
  room?: string;
  from?: string;
  args: unknown[];
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

  /** `mediaPublicUrl`: the base of ctx.mediaLink's links (default https://bridge.example.org). */
  constructor(opts: { domain?: string; ghosts?: string; portals?: string; mediaPublicUrl?: string } = {}) {
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

  private record(
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
  downloadMedia(mxcUrl: string): Promise<{ data: Uint8Array; contentType: string }> {
    void this.record("downloadMedia", undefined, undefined, [mxcUrl]);
    return Promise.resolve({ data: new TextEncoder().encode(`media ${mxcUrl}`), contentType: "text/plain" });
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
