/**
 * How a Matrix message becomes a post on the {{network}} network: shared by the adapter's
 * bot-level relay (adapter.ts) and users' own sessions (logins.ts), which post the same
 * message under different names.
 */
import type { BridgeContext, MatrixMessage } from "matrix-bridgekit";
import type { RemoteMessage } from "./remote-network.js";

/** The post's options: an action for an emote, the replied-to message, a file's details. */
export async function postOptions(
  message: MatrixMessage,
  ctx: BridgeContext,
): Promise<Pick<RemoteMessage, "action" | "replyTo" | "attachment">> {
  let attachment: RemoteMessage["attachment"];
  if (message.mediaUrl !== undefined) {
    // Media: fetch the bytes from the homeserver (the framework caps the size) for the network.
    const media = await ctx.downloadMedia(message.mediaUrl);
    attachment = { name: message.body, contentType: media.contentType, size: media.data.byteLength };
  }
  return {
    ...(message.msgtype === "m.emote" ? { action: true } : {}),
    // The framework found the remote id of the message replied to, when it was bridged.
    ...(message.replyTo?.remoteId !== undefined ? { replyTo: message.replyTo.remoteId } : {}),
    ...(attachment ? { attachment } : {}),
  };
}
