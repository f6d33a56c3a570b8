/**
 * A portal's bridge info (MSC2346): the `m.bridge` state event and its older twin
 * `uk.half-shot.bridge`, same key and content, so clients can show what a room is bridged to.
 * Set at creation (in the room's initial state) and again whenever the room's name or avatar
 * changes from the remote side, or the portal moves to an upgraded room.
 */
import type { BridgeInfoSection, RemoteNetworkAdapter } from "../adapter/adapter.js";
import type { HomeserverClient } from "../client/homeserver-client.js";
import type { InitialStateEvent } from "../client/types.js";
import type { Avatars } from "../media/avatars.js";

/** The two event types carrying the same bridge info: the MSC's, and the one clients read first. */
export const BRIDGE_INFO_TYPES = ["m.bridge", "uk.half-shot.bridge"] as const;

/** A section of the content, in the MSC's field names (avatar_url an mxc:// URI). */
export type BridgeInfoContentSection = {
  id: string;
  displayname?: string;
  avatar_url?: string;
  external_url?: string;
};

/** What the content says about the room itself. */
export interface ChannelInfo {
  remoteId: string;
  /** The room's name, as set on Matrix. */
  name?: string;
  /** The room's avatar, an mxc:// URI. */
  avatarMxc?: string;
  /** The Matrix user who made the link (a login's DM portal: its user). */
  creator?: string;
}

/** A section in the MSC's field names; empty strings are left out. Pure. */
export function infoSection(s: BridgeInfoSection, avatarMxc?: string): BridgeInfoContentSection {
  const out: BridgeInfoContentSection = { id: s.id };
  if (s.displayName) out.displayname = s.displayName;
  if (avatarMxc) out.avatar_url = avatarMxc;
  if (s.externalUrl) out.external_url = s.externalUrl;
  return out;
}

/**
 * The state key MSC2346 suggests: `<bridge id>://<protocol>/<network>/<room>` (the network
 * left out when there is none), each part percent-encoded so a `/` in an id cannot shift the
 * others. Pure.
 */
export function bridgeInfoStateKey(
  bridgeId: string,
  protocol: string,
  network: string | undefined,
  room: string,
) {
  const parts = [protocol, ...(network !== undefined ? [network] : []), room].map(encodeURIComponent);
  return `${bridgeId}://${parts.join("/")}`;
}

export interface BridgeInfoOptions {
  /** The registration's id: the state key's first part, so two bridges in a room never clash. */
  bridgeId: string;
  client: HomeserverClient;
  adapter: Pick<RemoteNetworkAdapter, "name" | "bridgeInfo">;
  /** Uploads http(s) avatars of the description once. */
  avatars: Pick<Avatars, "mxcFor">;
}

/** Builds and sets a portal's bridge info from the adapter's description (`adapter.bridgeInfo`). */
export class BridgeInfo {
  constructor(private readonly o: BridgeInfoOptions) {}

  /** The protocol's and (for this room) the network's sections, the room's link. Must not do I/O. */
  private describe(remoteId: string) {
    const d = this.o.adapter.bridgeInfo;
    const protocol: BridgeInfoSection = { id: this.o.adapter.name, ...d?.protocol };
    const room = d?.room?.(remoteId);
    const network = room?.network ?? d?.network;
    return { protocol, network, externalUrl: room?.externalUrl };
  }

  /** The state key of a remote room's bridge info. Must not do I/O. */
  stateKey(remoteId: string): string {
    const { protocol, network } = this.describe(remoteId);
    return bridgeInfoStateKey(this.o.bridgeId, protocol.id, network?.id, remoteId);
  }

  /** The content for a room (the description's avatars uploaded once, as the bot). */
  async content(channel: ChannelInfo): Promise<Record<string, unknown>> {
    const { protocol, network, externalUrl } = this.describe(channel.remoteId);
    const content: Record<string, unknown> = {
      bridgebot: this.o.client.botUserId,
      protocol: infoSection(protocol, await this.mxc(protocol.avatarUrl)),
    };
    if (channel.creator !== undefined) content.creator = channel.creator;
    if (network) content.network = infoSection(network, await this.mxc(network.avatarUrl));
    content.channel = infoSection(
      {
        id: channel.remoteId,
        ...(channel.name !== undefined ? { displayName: channel.name } : {}),
        ...(externalUrl !== undefined ? { externalUrl } : {}),
      },
      channel.avatarMxc,
    );
    return content;
  }

  /** Both events, for createRoom's initial_state. */
  async initialState(channel: ChannelInfo): Promise<InitialStateEvent[]> {
    const content = await this.content(channel);
    const state_key = this.stateKey(channel.remoteId);
    return BRIDGE_INFO_TYPES.map((type) => ({ type, state_key, content }));
  }

  /**
   * Sets both events in `roomId` from the room's current name and avatar (read as the bot),
   * keeping the creator the events named before. Resolves once the homeserver accepted both.
   */
  async refresh(roomId: string, remoteId: string): Promise<void> {
    const bot = this.o.client.intent(this.o.client.botUserId);
    const stateKey = this.stateKey(remoteId);
    const [name, avatar, before] = await Promise.all([
      bot.getStateEvent(roomId, "m.room.name"),
      bot.getStateEvent(roomId, "m.room.avatar"),
      bot.getStateEvent(roomId, BRIDGE_INFO_TYPES[0], stateKey),
    ]);
    const channel: ChannelInfo = { remoteId };
    if (typeof name?.name === "string" && name.name !== "") channel.name = name.name;
    if (typeof avatar?.url === "string" && avatar.url !== "") channel.avatarMxc = avatar.url;
    if (typeof before?.creator === "string") channel.creator = before.creator;
    const content = await this.content(channel);
    for (const type of BRIDGE_INFO_TYPES) await bot.sendState(roomId, type, stateKey, content);
  }

  private async mxc(url: string | undefined): Promise<string | undefined> {
    if (url === undefined || url === "") return undefined;
    return this.o.avatars.mxcFor(url, this.o.client.botUserId);
  }
}
