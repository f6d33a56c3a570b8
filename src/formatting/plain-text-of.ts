import type { MatrixMessage, RemoteNetworkAdapter } from "../adapter/adapter.js";
import { htmlToText } from "./to-text.js";

/**
 * A Matrix message as plain text for the remote network: its HTML turned into text
 * (htmlToText), each mention pill written by the adapter's `formatMention` (given the ghost's
 * remote id when the pill names one) or as the pill's text; `body` when it has no HTML.
 */
export function plainTextOf(
  message: Pick<MatrixMessage, "body" | "html" | "mentions">,
  adapter: Pick<RemoteNetworkAdapter, "formatMention"> = {},
): string {
  if (message.html === undefined) return message.body;
  const ghosts = message.mentions?.ghosts;
  return htmlToText(message.html, {
    mention: (userId, text) => {
      if (!adapter.formatMention) return text;
      const remoteId = ghosts !== undefined && Object.hasOwn(ghosts, userId) ? ghosts[userId] : undefined;
      return adapter.formatMention(
        remoteId === undefined ? { userId, displayName: text } : { userId, remoteId, displayName: text },
      );
    },
  });
}
