export * from "./adapter.js";
export * from "./config-reader.js";
