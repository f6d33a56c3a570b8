// The public API of matrix-bridgekit. Each concern lives in its own folder; this file only re-exports.
export * from "./registration/index.js";
export { ValidationError, describeValue, formatProblems, type Problem } from "./common/validation-error.js";
export * from "./store/index.js";
export * from "./matrix/events.js";
export * from "./matrix/third-party.js";
export { createLogger, silentLogger, redactText, type Logger } from "./common/logger.js";
export * from "./adapter/index.js";
export * from "./client/index.js";
export * from "./appservice/index.js";
export * from "./inbox/index.js";
export {
  loadConfig,
  validateConfig,
  envVarName,
  CONFIG_SCHEMA,
  schemaKeys,
  type BridgeConfig,
  type LogLevel,
  type ValidateConfigOptions,
} from "./config/index.js";
export { loadAdapter, resolveAdapterModule, AdapterLoadError } from "./adapter/load-adapter.js";
export * from "./bridge/index.js";
export * from "./users/index.js";
export * from "./formatting/index.js";
export * from "./media/index.js";
export * from "./remote-intake/index.js";
