import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BridgeConfig } from "../../src/config/types.js";
import { validateConfig } from "../../src/config/validate.js";
import { generateRegistration, type Registration } from "../../src/registration/index.js";
import { BENCH_DOMAIN } from "./transactions.js";

/** A fresh registration for a benchmark bridge (bot @benchbot, ghosts and portals `bench_{id}`). */
export function benchRegistration(url: string, domain = BENCH_DOMAIN): Registration {
  return generateRegistration({
    id: "bench",
    url,
    domain,
    senderLocalpart: "benchbot",
    ghosts: "bench_{id}",
    portals: "bench_{id}",
  });
}

/**
 * A Bridge config with the schema's defaults (the values config.example.yaml shows:
 * roomConcurrency 32, client concurrency 16, ...), logging silent, metrics off.
 */
export function benchConfig(o: {
  hsUrl: string;
  domain?: string;
  port?: number;
  store: string;
}): BridgeConfig {
  return validateConfig(
    {
      homeserver: { url: o.hsUrl, domain: o.domain ?? BENCH_DOMAIN },
      appservice: { registration: "/unused", port: o.port ?? 0 },
      store: o.store,
      bridge: { ghosts: "bench_{id}", portals: "bench_{id}" },
      adapter: { module: "unused" },
      logging: { level: "silent" },
      media: { spoolDir: join(tmpdir(), `bridgekit-spool-${process.pid}`) },
    },
    "bench config",
    { configDir: process.cwd() },
  );
}
