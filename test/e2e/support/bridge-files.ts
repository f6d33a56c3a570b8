import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dump } from "js-yaml";

export interface BridgeFiles {
  /** The bridge config file. */
  configPath: string;
  registrationPath: string;
}

export interface BridgeFilesOptions {
  /** "irc", "xmpp": the template prefix and the store file name. */
  network: string;
  /** Display name of the bridge bot. */
  botName: string;
  /** Absolute path of the adapter module. */
  adapterModule: string;
  homeserverUrl: string;
  domain: string;
  appservicePort: number;
  registration: object;
  adapterConfig: Record<string, unknown>;
  /** More top-level config sections, e.g. `media`. */
  extraConfig?: Record<string, unknown>;
}

/** What an example bridge's e2e test passes: everything but what names its network. */
export type NetworkBridgeFilesOptions = Omit<BridgeFilesOptions, "network" | "botName" | "adapterModule">;

/**
 * Writes an example bridge's config and registration into `dir` (both mode 0600: they hold
 * secrets). Ghosts and portals use the `{network}_{id}` templates, the store is a SQLite file
 * in `dir`, and the adapter module is loaded from source through tsx.
 */
export async function writeBridgeFiles(dir: string, opts: BridgeFilesOptions): Promise<BridgeFiles> {
  const registrationPath = join(dir, "registration.yaml");
  const configPath = join(dir, "config.yaml");
  await writeFile(registrationPath, dump(opts.registration), { mode: 0o600 });
  const template = `${opts.network}_{id}`;
  const config = {
    homeserver: { url: opts.homeserverUrl, domain: opts.domain },
    appservice: { registration: "registration.yaml", host: "127.0.0.1", port: opts.appservicePort },
    store: `sqlite://${opts.network}.db`,
    bridge: { ghosts: template, portals: template, botDisplayName: opts.botName },
    adapter: { module: opts.adapterModule, config: opts.adapterConfig },
    logging: { level: "info" },
    // Fail fast in tests: a request the homeserver refuses is retried a few times, not for a minute.
    client: { retryAttempts: 3, maxBackoffMs: 1000 },
    ...opts.extraConfig,
  };
  await writeFile(configPath, dump(config), { mode: 0o600 });
  return { configPath, registrationPath };
}
