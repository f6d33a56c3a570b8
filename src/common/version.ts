import { readFileSync } from "node:fs";

/**
 * matrix-bridgekit's version, from its package.json (two folders up from src/common and from
 * dist/common alike). "unknown" if it cannot be read.
 */
export const BRIDGEKIT_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
})();
