/**
 * The echo bridge's files for e2e tests that run it with `bridgekit start`: a config in a
 * folder (ghosts and portals `echo_{id}`, a sqlite store beside it, the echo adapter from
 * source, quick client retries, plus `extraLines`) and the registration that
 * `bridgekit generate-registration` writes from it. Synapse's URL is known only once Synapse
 * runs, which needs the registration first: `prepare` writes the config with a placeholder
 * URL and generates the registration; `pointAt` rewrites the config with the real URL.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadRegistration, type Registration } from "../../../src/registration/index.js";
import { REPO_ROOT, runBridgekit } from "./bridge-process.js";

const ECHO = join(REPO_ROOT, "examples", "echo", "src", "adapter.ts");

export interface EchoBridgeFiles {
  configPath: string;
  registration: Registration;
  /** Rewrites the config for the homeserver at `hsUrl`. */
  readonly pointAt: (hsUrl: string) => Promise<void>;
}

export async function prepareEchoBridgeFiles(o: {
  dir: string;
  domain: string;
  /** The bridge's appservice port. */
  port: number;
  /** More config lines (YAML flow mappings), e.g. `encryption: { allow: true, ... }`. */
  extraLines?: string[];
}): Promise<EchoBridgeFiles> {
  const configPath = join(o.dir, "config.yaml");
  const pointAt = (hsUrl: string) =>
    writeFile(
      configPath,
      [
        `homeserver: { url: "${hsUrl}", domain: ${o.domain} }`,
        `appservice: { host: 127.0.0.1, port: ${o.port} }`,
        "store: sqlite://data/echo.db",
        "bridge: { ghosts: 'echo_{id}', portals: 'echo_{id}', botDisplayName: Echo bridge bot }",
        `adapter: { module: "${ECHO}", config: { prefix: "echo: " } }`,
        "client: { retryAttempts: 4, maxBackoffMs: 500 }",
        ...(o.extraLines ?? []),
      ].join("\n"),
      { mode: 0o600 },
    );
  await pointAt("http://127.0.0.1:1"); // the real URL once Synapse runs
  const gen = await runBridgekit(["generate-registration", "--config", configPath]);
  assert.equal(gen.code, 0, gen.stderr);
  const registration = await loadRegistration(join(o.dir, "registration.yaml"));
  return { configPath, registration, pointAt };
}
