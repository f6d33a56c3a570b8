/**
 * Support for the IRC bridge's end-to-end test (e2e.test.ts): its config and registration
 * files. The Matrix user and appservice helpers shared by every bridge's e2e test are
 * re-exported from test/e2e/support/matrix-user.ts.
 */
import { join } from "node:path";
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
