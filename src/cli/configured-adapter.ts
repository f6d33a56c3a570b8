import type { RemoteNetworkAdapter } from "../adapter/adapter.js";
import { loadAdapter, resolveAdapterModule } from "../adapter/load-adapter.js";
import { createLogger } from "../common/logger.js";
import type { BridgeConfig } from "../config/types.js";

/**
 * Creates (never starts) the config's adapter, for commands that need to know what it
 * supports; its factory logs warnings and errors to stderr. Throws AdapterLoadError.
 */
export async function configuredAdapter(
  config: BridgeConfig,
): Promise<{ adapter: RemoteNetworkAdapter; file: string }> {
  const file = await resolveAdapterModule(config.adapter.module, config.configDir);
  const log = createLogger({ level: "warn", name: "adapter" }, process.stderr);
  const adapter = await loadAdapter(config.adapter.module, config.configDir, {
    config: config.adapter.config,
    log,
  });
  return { adapter, file };
}

/** The adapter's third-party protocol ids (`thirdParty.protocols` keys); [] without third-party support. */
export function adapterProtocols(adapter: RemoteNetworkAdapter): string[] {
  const protocols = adapter.thirdParty?.protocols;
  return protocols !== null && typeof protocols === "object" ? Object.keys(protocols) : [];
}
