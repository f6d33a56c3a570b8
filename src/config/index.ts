export type { BridgeConfig, LogLevel, Env } from "./types.js";
export { loadConfig } from "./load.js";
export { validateConfig, checkConfig, resolveStoreUrl, type ValidateConfigOptions } from "./validate.js";
export { applyEnvOverrides, envVarName, ENV_PREFIX } from "./env.js";
export { CONFIG_SCHEMA, schemaKeys, type KeySpec, type SectionSpec, type KeyType } from "./schema.js";
export { renderConfigTable } from "./docs-table.js";
