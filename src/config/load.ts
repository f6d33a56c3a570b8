import { dirname, resolve } from "node:path";
import { readYamlFile } from "../common/yaml-file.js";
import type { BridgeConfig, Env } from "./types.js";
import { validateConfig } from "./validate.js";

/**
 * Reads a bridge config file, applies `BRIDGEKIT_*` overrides from `env`, validates it and
 * returns the typed, fully defaulted config: paths (registration, sqlite store) made
 * absolute against the file's folder, which is `configDir`. Throws ValidationError naming
 * the file, each key path (or env variable) and what was wrong, all problems at once.
 * Unknown `BRIDGEKIT_*` variables that look like config keys become `warnings`.
 */
export async function loadConfig(path: string, env: Env = process.env): Promise<BridgeConfig> {
  const doc = await readYamlFile(path);
  return validateConfig(doc, path, { configDir: dirname(resolve(path)), env });
}
