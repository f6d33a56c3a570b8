/**
 * Support for the IRC bridge's end-to-end test (e2e.test.ts): its config and registration
 * files. The Matrix user and appservice helpers shared by every bridge's e2e test are
 * re-exported from test/e2e/support/matrix-user.ts.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dump } from "js-yaml";

export * from "../../../test/e2e/support/matrix-user.js";

export interface IrcBridgeFiles {
  /** The bridge config file. */
  configPath: string;
  registrationPath: string;
}

/**
 * Writes a bridge config for the IRC example adapter and its registration into `dir`. The
 * adapter module is the example's source (`../src/adapter.ts`), loaded through tsx.
 */
export async function writeIrcBridgeFiles(
  dir: string,
  opts: {
    homeserverUrl: string;
    domain: string;
    appservicePort: number;
    registration: object;
    adapterConfig: Record<string, unknown>;
  },
): Promise<IrcBridgeFiles> {
  const registrationPath = join(dir, "registration.yaml");
  const configPath = join(dir, "config.yaml");
  await writeFile(registrationPath, dump(opts.registration), { mode: 0o600 });
  const config = {
    homeserver: { url: opts.homeserverUrl, domain: opts.domain },
    appservice: { registration: "registration.yaml", host: "127.0.0.1", port: opts.appservicePort },
    store: "sqlite://irc.db",
    bridge: { ghosts: "irc_{id}", portals: "irc_{id}", botDisplayName: "IRC bridge bot" },
    adapter: {
      module: join(import.meta.dirname, "..", "src", "adapter.ts"),
      config: opts.adapterConfig,
    },
    logging: { level: "info" },
    // Fail fast in tests: a request the homeserver refuses is retried a few times, not for a minute.
    client: { retryAttempts: 3, maxBackoffMs: 1000 },
  };
  await writeFile(configPath, dump(config), { mode: 0o600 });
  return { configPath, registrationPath };
}
