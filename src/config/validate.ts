import { isAbsolute, resolve } from "node:path";
import { describeValue, ValidationError, type Problem } from "../common/validation-error.js";
import { applyEnvOverrides } from "./env.js";
import {
  CONFIG_SCHEMA,
  schemaKeys,
  serverName,
  type ConfigDocView,
  type KeySpec,
  type SectionSpec,
} from "./schema.js";
import { closest } from "./suggest.js";
import type { BridgeConfig, Env } from "./types.js";

export interface ValidateConfigOptions {
  /** The folder relative paths are resolved against (default: the working directory). */
  configDir?: string;
  /** Environment overrides to apply first (default: none; loadConfig passes process.env). */
  env?: Env;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function typeName(spec: KeySpec): string {
  return spec.type === "integer"
    ? "an integer"
    : spec.type === "boolean"
      ? "true or false"
      : spec.type === "mapping"
        ? "a mapping"
        : "a string";
}

function hasType(spec: KeySpec, value: unknown): boolean {
  switch (spec.type) {
    case "string":
      return typeof value === "string";
    case "integer":
      return typeof value === "number" && Number.isSafeInteger(value);
    case "boolean":
      return typeof value === "boolean";
    case "mapping":
      return isObject(value);
  }
}

/** What is wrong with one key's value (type, allowed values, bounds, format), or null. Pure. */
export function checkKey(spec: KeySpec, value: unknown, view: ConfigDocView): string | null {
  const got =
    spec.secret && typeof value === "string"
      ? `got a secret of ${value.length} characters`
      : `got ${describeValue(value)}`;
  if (!hasType(spec, value)) return `must be ${typeName(spec)}, ${got}`;
  if (spec.values && !spec.values.includes(value as string)) {
    const guess = closest(value as string, spec.values);
    return `must be one of ${spec.values.join(", ")}, ${got}${guess ? ` (did you mean "${guess}"?)` : ""}`;
  }
  if (typeof value === "number") {
    const { min, max } = spec;
    if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
      const range =
        min !== undefined && max !== undefined
          ? `between ${min} and ${max}`
          : min !== undefined
            ? `at least ${min}`
            : `at most ${max}`;
      return `must be ${range}, ${got}`;
    }
  }
  if (spec.format && typeof value === "string") {
    const why = spec.format.check(value, view);
    if (why !== null) return `${why}, ${got}`;
  }
  return null;
}

const ALL_KEYS = schemaKeys();

/** "is not a config key", with the likeliest intended key when one is close. */
function unknownKeyMessage(section: SectionSpec, prefix: string, name: string): string {
  const at = (k: string) => (prefix === "" ? k : `${prefix}.${k}`);
  const normalise = (k: string) => k.toLowerCase().replace(/[_-]/g, "");
  const sibling = closest(name, Object.keys(section.keys));
  // Otherwise, the same key written in the wrong section, e.g. a top-level `port`.
  const guess =
    sibling !== undefined
      ? at(sibling)
      : ALL_KEYS.find((k) => normalise(k.path.split(".").at(-1)!) === normalise(name))?.path;
  return `is not a config key${guess === undefined ? "" : ` (did you mean "${guess}"?)`}`;
}

/**
 * Checks a parsed config document against CONFIG_SCHEMA, after applying env overrides, and
 * returns every problem (an empty list means valid) with the defaulted values. Pure: no I/O.
 */
export function checkConfig(
  doc: unknown,
  env: Env = {},
): { problems: Problem[]; values: Record<string, unknown>; warnings: string[] } {
  const overridden = applyEnvOverrides(doc, env);
  const problems: Problem[] = [];
  // Env values of the wrong type are reported where their key is, in schema order.
  const badEnv = new Map(overridden.problems.map((p) => [p.path, p]));
  const problem = (path: string, message: string) => {
    const origin = overridden.origins.get(path);
    problems.push({ path, message: origin === undefined ? message : `${message} (from ${origin})` });
  };
  const root = overridden.doc;
  const view: ConfigDocView = {
    get(path) {
      let value: unknown = root;
      for (const part of path.split(".")) value = isObject(value) ? value[part] : undefined;
      return value;
    },
  };

  if (!isObject(root)) {
    problem(
      "",
      `must be a mapping of sections (homeserver, appservice, bridge, adapter, …), got ${describeValue(root)}`,
    );
    return { problems, values: {}, warnings: overridden.warnings };
  }

  const walk = (
    section: SectionSpec,
    value: Record<string, unknown>,
    prefix: string,
  ): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(value)) {
      if (!Object.hasOwn(section.keys, name)) {
        problem(prefix === "" ? name : `${prefix}.${name}`, unknownKeyMessage(section, prefix, name));
      }
    }
    for (const [name, node] of Object.entries(section.keys)) {
      const path = prefix === "" ? name : `${prefix}.${name}`;
      const raw = value[name];
      if (node.kind === "section") {
        if (raw === undefined || raw === null) out[name] = walk(node, {}, path);
        else if (!isObject(raw)) problem(path, `must be a mapping (${node.doc}), got ${describeValue(raw)}`);
        else out[name] = walk(node, raw, path);
        continue;
      }
      const envProblem = badEnv.get(path);
      if (envProblem !== undefined) {
        problems.push(envProblem);
        continue;
      }
      if (raw === undefined || raw === null) {
        if (node.required) problem(path, `is required (${node.doc})`);
        else if (node.default !== undefined) out[name] = structuredClone(node.default);
        continue;
      }
      const why = checkKey(node, raw, view);
      if (why !== null) problem(path, why);
      else out[name] = raw;
    }
    return out;
  };
  const values = walk(CONFIG_SCHEMA, root, "");

  // Rules across keys.
  const metrics = values.metrics as { enabled?: boolean; port?: number; host?: string } | undefined;
  const appservice = values.appservice as { port?: number } | undefined;
  if (metrics?.port !== undefined && metrics.port !== 0 && metrics.port === appservice?.port) {
    problem(
      "metrics.port",
      `must differ from appservice.port (${metrics.port}); leave it out to serve /metrics on the appservice port`,
    );
  }
  const media = values.media as { publicUrl?: string; linkKey?: string } | undefined;
  if (
    media?.publicUrl !== undefined &&
    media.linkKey === undefined &&
    !problems.some((p) => p.path === "media.linkKey")
  ) {
    problem(
      "media.linkKey",
      "is required with media.publicUrl (it signs the links the bridge serves; 16+ characters)",
    );
  }
  const encryption = values.encryption as
    { allow?: boolean; default?: boolean; require?: boolean; pickleKey?: string } | undefined;
  if (
    encryption?.allow === true &&
    encryption.pickleKey === undefined &&
    !problems.some((p) => p.path === "encryption.pickleKey")
  ) {
    problem(
      "encryption.pickleKey",
      "is required with encryption.allow (it protects the stored crypto state; 16+ characters)",
    );
  }
  for (const flag of ["default", "require"] as const) {
    if (encryption?.[flag] !== true) continue;
    if (encryption.allow !== true) problem(`encryption.${flag}`, "needs encryption.allow: true");
    else
      problem(
        `encryption.${flag}`,
        "is not supported yet (this bridgekit decrypts what it receives but does not encrypt what it sends); leave it false",
      );
  }
  const permissions = values.permissions;
  if (isObject(permissions)) {
    for (const [who, level] of Object.entries(permissions)) {
      const why = checkPermissionEntry(who, level);
      if (why !== null) problem(`permissions.${who}`, why);
    }
  }
  const warnings = [...overridden.warnings];
  if (metrics?.enabled === false && metrics.port !== undefined) {
    warnings.push("metrics.port is set but metrics.enabled is false: no metrics are served");
  }
  return { problems, values, warnings };
}

const PERMISSION_LEVELS = ["relay", "user", "admin"];

/** What is wrong with one `permissions` entry (who -> level), or null. */
function checkPermissionEntry(who: string, level: unknown): string | null {
  if (typeof level !== "string" || !PERMISSION_LEVELS.includes(level)) {
    const guess = typeof level === "string" ? closest(level, PERMISSION_LEVELS) : undefined;
    return `must be relay, user or admin, got ${describeValue(level)}${guess ? ` (did you mean "${guess}"?)` : ""}`;
  }
  if (who === "*") return null;
  if (who.startsWith("@")) {
    return /^@[^:\s]+:[^\s]+$/.test(who) ? null : "is not a user id such as @alice:example.org";
  }
  return serverName.check(who, { get: () => undefined }) === null
    ? null
    : 'is not a user id (@alice:example.org), a server name (example.org) or "*"';
}

/** `sqlite://relative.db` against `dir` -> `sqlite:///abs/relative.db`; other URLs unchanged. */
export function resolveStoreUrl(url: string, dir: string): string {
  const m = /^sqlite:\/\/([^?]*)(\?.*)?$/i.exec(url);
  if (!m) return url;
  const path = decodeURIComponent(m[1]!);
  const absolute = isAbsolute(path) ? path : resolve(dir, path);
  return `sqlite://${encodeURI(absolute)}${m[2] ?? ""}`;
}

/**
 * Validates a parsed config document (after applying `options.env` overrides) and returns
 * the typed, fully defaulted config with absolute paths. Throws ValidationError naming
 * `source`, each key path and what was wrong with it, all problems at once.
 */
export function validateConfig(
  doc: unknown,
  source = "config",
  options: ValidateConfigOptions = {},
): BridgeConfig {
  const configDir = resolve(options.configDir ?? process.cwd());
  const { problems, values, warnings } = checkConfig(doc, options.env ?? {});
  if (problems.length > 0) throw new ValidationError(source, problems);
  const config = values as unknown as BridgeConfig;
  config.appservice.registration = resolve(configDir, config.appservice.registration);
  config.store = resolveStoreUrl(config.store, configDir);
  config.permissions ??= { "*": "relay", [config.homeserver.domain]: "user" };
  if (config.doublePuppet.registration !== undefined)
    config.doublePuppet.registration = resolve(configDir, config.doublePuppet.registration);
  config.media.spoolDir = resolve(configDir, config.media.spoolDir);
  config.configDir = configDir;
  config.warnings = warnings;
  return config;
}
