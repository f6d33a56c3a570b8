/**
 * Environment overrides: `BRIDGEKIT_<SECTION>_<KEY>` in upper snake case sets the key at
 * `section.key` (`BRIDGEKIT_APPSERVICE_MAX_BODY_BYTES` sets `appservice.maxBodyBytes`;
 * `BRIDGEKIT_STORE` sets `store`). Values are typed by the schema. Overrides apply before
 * validation, so a bad value is reported like a bad key, naming the variable.
 */
import { describeValue, type Problem } from "../common/validation-error.js";
import { schemaKeys, type KeySpec } from "./schema.js";
import { closest } from "./suggest.js";
import type { Env } from "./types.js";

export const ENV_PREFIX = "BRIDGEKIT_";
/** Variables the project's own tests use; never taken for misspelt config keys. */
const IGNORED_PREFIXES = ["BRIDGEKIT_TEST_"];

/** `appservice.maxBodyBytes` -> `BRIDGEKIT_APPSERVICE_MAX_BODY_BYTES`. */
export function envVarName(path: string): string {
  return (
    ENV_PREFIX +
    path
      .split(".")
      .map((part) => part.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase())
      .join("_")
  );
}

const TRUE = ["true", "1", "yes", "on"];
const FALSE = ["false", "0", "no", "off"];

/** Converts an env value to the key's type; returns the value or the reason it is not one. */
export function parseEnvValue(spec: KeySpec, raw: string): { value: unknown } | { error: string } {
  switch (spec.type) {
    case "string":
      return { value: raw };
    case "integer": {
      const text = raw.trim();
      if (!/^[+-]?\d+$/.test(text)) return { error: `must be an integer, got ${describeValue(raw)}` };
      const value = Number(text);
      return Number.isSafeInteger(value) ? { value } : { error: `is too large, got ${describeValue(raw)}` };
    }
    case "boolean": {
      const text = raw.trim().toLowerCase();
      if (TRUE.includes(text)) return { value: true };
      if (FALSE.includes(text)) return { value: false };
      return { error: `must be true or false, got ${describeValue(raw)}` };
    }
    case "mapping": {
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        return { error: "must be a JSON object, and does not parse as JSON" };
      }
      return typeof value === "object" && value !== null && !Array.isArray(value)
        ? { value }
        : { error: `must be a JSON object, got ${describeValue(value)}` };
    }
  }
}

export interface EnvOverrides {
  /** A copy of the document with the overrides applied (the input is not changed). */
  doc: unknown;
  /** Env values that do not fit their key's type, at the key's path. */
  problems: Problem[];
  /** Which variable set each overridden path, for error messages. */
  origins: Map<string, string>;
  /** Unknown BRIDGEKIT_ variables that look like misspelt config keys. */
  warnings: string[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Applies every `BRIDGEKIT_*` override in `env` to a copy of `doc`. An empty or absent
 * document counts as an empty mapping, so a bridge can be configured from the environment
 * alone. A section that is present but not a mapping is left for validation to report.
 */
export function applyEnvOverrides(doc: unknown, env: Env): EnvOverrides {
  const out: EnvOverrides = {
    doc: doc === undefined || doc === null ? {} : structuredClone(doc),
    problems: [],
    origins: new Map(),
    warnings: [],
  };
  const keys = schemaKeys().filter((k) => k.spec.env !== false);
  const known = new Map(keys.map((k) => [envVarName(k.path), k]));

  for (const [name, { path, spec }] of known) {
    const raw = env[name];
    if (raw === undefined) continue;
    const parsed = parseEnvValue(spec, raw);
    if ("error" in parsed) {
      out.problems.push({ path, message: `${parsed.error} (from ${name})` });
      continue;
    }
    if (!isObject(out.doc)) continue;
    let target: Record<string, unknown> = out.doc;
    const parts = path.split(".");
    let reachable = true;
    for (const part of parts.slice(0, -1)) {
      if (target[part] === undefined || target[part] === null) target[part] = {};
      const next = target[part];
      if (!isObject(next)) {
        reachable = false;
        break;
      }
      target = next;
    }
    if (!reachable) continue;
    target[parts.at(-1)!] = parsed.value;
    out.origins.set(path, name);
  }

  const sectionPrefixes = [...new Set(keys.map((k) => envVarName(k.path.split(".")[0]!)))];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX) || known.has(name)) continue;
    if (IGNORED_PREFIXES.some((p) => name.startsWith(p))) continue;
    const guess = closest(
      name.slice(ENV_PREFIX.length),
      [...known.keys()].map((n) => n.slice(ENV_PREFIX.length)),
    );
    const inSection = sectionPrefixes.some((p) => name.startsWith(`${p}_`));
    if (guess === undefined && !inSection) continue; // not ours: other tools may share the prefix
    out.warnings.push(
      `environment variable ${name} is not a config key and is ignored` +
        (guess === undefined ? "" : ` (did you mean ${ENV_PREFIX}${guess}?)`),
    );
  }
  return out;
}
