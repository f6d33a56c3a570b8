/**
 * Support for the XMPP bridge's end-to-end test (e2e.test.ts): its config and registration
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

/** Writes the XMPP example bridge's config (adapter from ../src/adapter.ts) and registration into `dir`. */
export function writeXmppBridgeFiles(dir: string, opts: NetworkBridgeFilesOptions): Promise<BridgeFiles> {
  return writeBridgeFiles(dir, {
    ...opts,
    network: "xmpp",
    botName: "XMPP bridge bot",
    adapterModule: join(import.meta.dirname, "..", "src", "adapter.ts"),
  });
}
