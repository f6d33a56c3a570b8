/**
 * Support for the IRC bridge's end-to-end test (e2e.test.ts): its config and registration
 * files. The Matrix user and appservice helpers shared by every bridge's e2e test are
 * re-exported from test/e2e/support/matrix-user.ts.
 */
import { join } from "node:path";
import { generateRegistration, type Registration } from "matrix-bridgekit";
import {
  writeBridgeFiles,
  type BridgeFiles,
  type NetworkBridgeFilesOptions,
} from "../../../test/e2e/support/bridge-files.js";

export * from "../../../test/e2e/support/matrix-user.js";

/** Writes the IRC example bridge's config (adapter from ../src/adapter.ts) and registration into `dir`. */
export function writeIrcBridgeFiles(dir: string, opts: NetworkBridgeFilesOptions): Promise<BridgeFiles> {
  return writeBridgeFiles(dir, {
    ...opts,
    network: "irc",
    botName: "IRC bridge bot",
    adapterModule: join(import.meta.dirname, "..", "src", "adapter.ts"),
  });
}

/** The names both IRC e2e suites use: Synapse's server name, the bot's nick, the channel and its portal. */
export const DOMAIN = "localhost";
export const BOT_NICK = "MatrixBridge";
export const CHANNEL = "#Lobby";
export const ALIAS = `#irc_lobby:${DOMAIN}`;
export const BOT_USER = `@ircbot:${DOMAIN}`;
export const ghost = (id: string): string => `@irc_${id}:${DOMAIN}`;

/** The registration of an IRC e2e bridge (`irc_{id}` ghosts and portals, bot `ircbot`) listening on `port`. */
export function ircRegistration(id: string, port: number): Registration {
  return generateRegistration({
    id,
    url: `http://127.0.0.1:${port}`,
    domain: DOMAIN,
    senderLocalpart: "ircbot",
    ghosts: "irc_{id}",
    portals: "irc_{id}",
  });
}
