/**
 * A real Synapse and an in-process Bridge on a sqlite store in a temporary folder, for e2e
 * tests whose adapter is an object in the test: the registration (ghosts and portals
 * `<prefix>_{id}`), the config file (with `configLines` added), Synapse loading the
 * registration, the bridge started. `stop` undoes all of it.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RemoteNetworkAdapter } from "../../../src/adapter/index.js";
import { Bridge } from "../../../src/bridge/index.js";
import type { Logger } from "../../../src/common/logger.js";
import { loadConfig } from "../../../src/config/load.js";
import { generateRegistration, type Registration } from "../../../src/registration/index.js";
import { freePort, startSynapse, type SynapseInstance } from "./synapse.js";

export interface InProcessBridge {
  synapse: SynapseInstance;
  bridge: Bridge;
  registration: Registration;
  /** The temporary folder holding the config and the store. */
  dir: string;
  stop(): Promise<void>;
}

export async function startInProcessBridge(o: {
  /** The registration id; also names the store file and the temporary folder. */
  id: string;
  /** Ghosts `@<prefix>_{id}`, portals `#<prefix>_{id}`. */
  prefix: string;
  senderLocalpart: string;
  adapter: RemoteNetworkAdapter;
  logger: Logger;
  /** More config file lines (YAML flow mappings), e.g. `backfill: { maxOnCreate: 50 }`. */
  configLines?: string[];
  domain?: string;
}): Promise<InProcessBridge> {
  const domain = o.domain ?? "localhost";
  const dir = await mkdtemp(join(tmpdir(), `bk-e2e-${o.id}-`));
  const port = await freePort();
  const registration = generateRegistration({
    id: o.id,
    url: `http://127.0.0.1:${port}`,
    domain,
    senderLocalpart: o.senderLocalpart,
    ghosts: `${o.prefix}_{id}`,
    portals: `${o.prefix}_{id}`,
  });
  const synapse = await startSynapse({ registrations: [registration], serverName: domain });
  const configPath = join(dir, "config.yaml");
  await writeFile(
    configPath,
    [
      `homeserver: { url: "${synapse.url}", domain: ${domain} }`,
      `appservice: { host: 127.0.0.1, port: ${port} }`,
      `store: sqlite://data/${o.id}.db`,
      `bridge: { ghosts: '${o.prefix}_{id}', portals: '${o.prefix}_{id}' }`,
      'adapter: { module: "./in-process" }',
      ...(o.configLines ?? []),
    ].join("\n"),
  );
  const bridge = await Bridge.fromConfig(await loadConfig(configPath, {}), {
    registration,
    adapter: o.adapter,
    logger: o.logger,
  });
  await bridge.start();
  return {
    synapse,
    bridge,
    registration,
    dir,
    async stop() {
      await bridge.stop();
      await synapse.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
