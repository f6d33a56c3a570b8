import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BridgeConfig } from "../../src/config/types.js";
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
 * A Bridge config with the values of config.example.yaml (roomConcurrency 32, journal
 * retention 10 000, client concurrency 16), logging silent, metrics off.
 */
export function benchConfig(o: {
  hsUrl: string;
  domain?: string;
  port?: number;
  store: string;
}): BridgeConfig {
  return {
    homeserver: { url: o.hsUrl, domain: o.domain ?? BENCH_DOMAIN },
    appservice: {
      registration: "/unused",
      host: "127.0.0.1",
      port: o.port ?? 0,
      maxBodyBytes: 16 * 1024 * 1024,
      handlerTimeoutMs: 30_000,
      roomConcurrency: 32,
    },
    inbox: {
      transactions: 10_000,
      maxPendingItems: 10_000,
      retry: {
        firstDelayMs: 1_000,
        maxDelayMs: 300_000,
        maxAttempts: 10,
        maxAgeMs: 3_600_000,
        unexpectedAttempts: 3,
      },
      maxDeadLetters: 10_000,
      deadLetterNotice: true,
    },
    lease: { standby: false, ttlMs: 5_000 },
    store: o.store,
    bridge: { ghosts: "bench_{id}", portals: "bench_{id}", unsupportedNotice: true },
    permissions: { "*": "relay", [o.domain ?? BENCH_DOMAIN]: "user" },
    commands: {},
    logins: {
      connectConcurrency: 32,
      processTimeoutMs: 900_000,
      waitTimeoutMs: 300_000,
      relayFormat: "<{name}> {body}",
      relayEmoteFormat: "* {name} {body}",
    },
    provisioning: {},
    doublePuppet: {},
    adapter: { module: "unused", config: {} },
    logging: { level: "silent" },
    metrics: { enabled: false, host: "127.0.0.1" },
    media: {
      spoolDir: join(tmpdir(), `bridgekit-spool-${process.pid}`),
      maxBytes: 104_857_600,
      linkTtlMs: 604_800_000,
    },
    client: { concurrency: 16, retryAttempts: 8, maxBackoffMs: 60_000, requestTimeoutMs: 30_000 },
    configDir: process.cwd(),
    warnings: [],
  };
}
