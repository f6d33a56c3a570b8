/**
 * Loads the adapter named by the config's `adapter.module`: a package name (resolved from
 * the config file's folder upward through node_modules), or a path to a .js/.ts file or to
 * a package folder (through its package.json `exports` or `main`, else index.js/index.ts).
 * Relative paths are relative to the config file's folder.
 *
 * .ts/.mts/.cts files are compiled by tsx: by its process-wide loader when the process runs
 * under it (`node --import tsx`, the tsx CLI), else by its scoped loader (`tsImport`), never by
 * Node's own type stripping (Node >= 22.18), which rejects parameter properties, enums and
 * `.js` specifiers naming .ts files. That is for development: production bridges compile
 * their adapter to .js.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, extname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Logger } from "../common/logger.js";
import type { AdapterFactory, RemoteNetworkAdapter } from "./adapter.js";

/** A failure to load an adapter; the message names the module spec and the resolved path. */
export class AdapterLoadError extends Error {
  override readonly name = "AdapterLoadError";
  constructor(
    readonly spec: string,
    /** The file or folder the spec resolved to, when it got that far. */
    readonly resolvedPath: string | undefined,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(
      `adapter module "${spec}"${resolvedPath === undefined ? "" : ` (${resolvedPath})`}: ${reason}`,
      options,
    );
  }
}

const MODULE_EXTENSIONS = [".js", ".mjs", ".cjs", ".ts", ".mts", ".cts"];
const TS_EXTENSIONS = [".ts", ".mts", ".cts"];
/** Conditions honoured in package.json `exports`, as Node's import does (plus none of tsx's). */
const CONDITIONS = ["import", "node", "default"];
/** Optional adapter methods: if present they must be functions. */
const OPTIONAL_METHODS = [
  "onMessage",
  "onEdit",
  "onRedaction",
  "onReaction",
  "onMembership",
  "onTyping",
  "onReceipt",
  "onRoomChange",
  "queryUser",
  "queryRoom",
  "userFromUri",
  "roomFromUri",
  "fetchHistory",
] as const;

/** True if the spec is a path (relative, absolute or file: URL) rather than a package name. */
export function isPathSpec(spec: string): boolean {
  return (
    spec.startsWith("./") ||
    spec.startsWith("../") ||
    spec === "." ||
    spec === ".." ||
    spec.startsWith("file:") ||
    isAbsolute(spec) ||
    /^[A-Za-z]:[\\/]/.test(spec)
  );
}

async function kindOf(path: string): Promise<"file" | "dir" | undefined> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? "dir" : s.isFile() ? "file" : undefined;
  } catch {
    return undefined;
  }
}

/** Picks the target of an `exports` value for the active conditions; undefined if none. */
function pickExport(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    for (const item of value) {
      const hit = pickExport(item);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
  if (typeof value === "object" && value !== null) {
    for (const [condition, target] of Object.entries(value)) {
      if (CONDITIONS.includes(condition)) {
        const hit = pickExport(target);
        if (hit !== undefined) return hit;
      }
    }
  }
  return undefined;
}

/** A module file at `base`, trying the extensions and index files the way bundlers do. */
async function resolveFile(base: string): Promise<string | undefined> {
  const kind = await kindOf(base);
  if (kind === "file") return base;
  for (const ext of MODULE_EXTENSIONS) if ((await kindOf(base + ext)) === "file") return base + ext;
  if (kind === "dir") {
    for (const index of ["index.js", "index.mjs", "index.ts", "index.mts"]) {
      if ((await kindOf(join(base, index))) === "file") return join(base, index);
    }
  }
  return undefined;
}

/** The entry file of a package folder for `subpath` ("." or "./sub"). */
async function resolvePackageFolder(spec: string, dir: string, subpath: string): Promise<string> {
  const pkgPath = join(dir, "package.json");
  let pkg: { exports?: unknown; main?: unknown } | undefined;
  if ((await kindOf(pkgPath)) === "file") {
    try {
      pkg = JSON.parse(await readFile(pkgPath, "utf8")) as typeof pkg;
    } catch (err) {
      throw new AdapterLoadError(spec, pkgPath, `cannot read package.json: ${(err as Error).message}`);
    }
  }
  if (pkg?.exports !== undefined && pkg.exports !== null) {
    const exp = pkg.exports;
    const sugar =
      typeof exp === "string" ||
      Array.isArray(exp) ||
      (typeof exp === "object" && !Object.keys(exp).some((k) => k.startsWith(".")));
    const entry = sugar ? (subpath === "." ? exp : undefined) : (exp as Record<string, unknown>)[subpath];
    const target = pickExport(entry);
    if (target === undefined) {
      throw new AdapterLoadError(
        spec,
        pkgPath,
        `package.json "exports" has no "${subpath}" entry for the import, node or default condition`,
      );
    }
    const file = resolve(dir, target);
    if ((await kindOf(file)) !== "file") {
      throw new AdapterLoadError(spec, file, `package.json "exports" points to a file that does not exist`);
    }
    return file;
  }
  if (subpath !== ".") {
    const file = await resolveFile(join(dir, subpath));
    if (file === undefined) throw new AdapterLoadError(spec, join(dir, subpath), "not found");
    return file;
  }
  if (typeof pkg?.main === "string" && pkg.main !== "") {
    const file = await resolveFile(resolve(dir, pkg.main));
    if (file === undefined) {
      throw new AdapterLoadError(spec, resolve(dir, pkg.main), `package.json "main" points to no file`);
    }
    return file;
  }
  const index = await resolveFile(join(dir, "index"));
  if (index === undefined) {
    throw new AdapterLoadError(
      spec,
      dir,
      "is a folder with no entry point: give it a package.json with exports or main, or an index.js or index.ts",
    );
  }
  return index;
}

/**
 * The file `spec` resolves to from `configDir`, without importing it. Throws
 * AdapterLoadError naming the spec and the path tried when nothing is found there.
 */
export async function resolveAdapterModule(spec: string, configDir: string): Promise<string> {
  if (spec.trim() === "") throw new AdapterLoadError(spec, undefined, "names no module");
  if (isPathSpec(spec)) {
    const path = spec.startsWith("file:") ? fileURLToPath(spec) : resolve(configDir, spec);
    const kind = await kindOf(path);
    if (kind === undefined) throw new AdapterLoadError(spec, path, "not found");
    if (kind === "dir") return resolvePackageFolder(spec, path, ".");
    if (!MODULE_EXTENSIONS.includes(extname(path))) {
      throw new AdapterLoadError(
        spec,
        path,
        `must be a .js or .ts module, got a ${extname(path) || "extensionless"} file`,
      );
    }
    return path;
  }
  const m = /^((?:@[^/]+\/)?[^/@][^/]*)(\/.*)?$/.exec(spec);
  if (!m)
    throw new AdapterLoadError(spec, undefined, "is neither a package name nor a path (start paths with ./)");
  const [, name, rest] = m as unknown as [string, string, string | undefined];
  const subpath = rest === undefined ? "." : `.${rest}`;
  const tried: string[] = [];
  for (let dir = resolve(configDir); ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    tried.push(candidate);
    if ((await kindOf(candidate)) === "dir") return resolvePackageFolder(spec, candidate, subpath);
    if (dirname(dir) === dir) break;
  }
  throw new AdapterLoadError(
    spec,
    tried[0],
    `package "${name}" not found in node_modules of ${resolve(configDir)} or any folder above it ` +
      `(install it, or write a path starting with ./)`,
  );
}

/** The symbol under which tsx counts its process-wide loaders on globalThis (tsx 4). */
const TSX_GLOBAL_LOADERS = Symbol.for("tsx:global-cjs-loader-count");

/**
 * True when tsx's process-wide loader is registered (`node --import tsx`, the tsx CLI, or
 * either through NODE_OPTIONS), so that a plain import() of a .ts file is compiled by tsx.
 */
export function tsxLoaderActive(): boolean {
  const count = (globalThis as Record<symbol, unknown>)[TSX_GLOBAL_LOADERS];
  return typeof count === "number" && count > 0;
}

async function importModule(spec: string, file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(file).href;
  // Not a plain import() outside tsx: Node >= 22.18 would strip the types itself, and fail
  // on anything that is more than erasable annotations.
  if (TS_EXTENSIONS.includes(extname(file)) && !tsxLoaderActive()) {
    try {
      const { tsImport } = await import("tsx/esm/api");
      return (await tsImport(url, import.meta.url)) as Record<string, unknown>;
    } catch (err) {
      throw new AdapterLoadError(
        spec,
        file,
        `failed to import this .ts file with tsx (compile it to .js, or run under tsx): ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw new AdapterLoadError(spec, file, `failed to import: ${(err as Error).message}`, { cause: err });
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** The factory a module exports: its default export, or a named `createAdapter`. */
function findFactory(spec: string, file: string, mod: Record<string, unknown>): AdapterFactory {
  let candidate = mod.default ?? mod.createAdapter;
  // A CommonJS module compiled from `export default` arrives as { default: { default: fn } }.
  if (typeof candidate === "object" && candidate !== null) {
    const inner = candidate as Record<string, unknown>;
    if (typeof inner.default === "function") candidate = inner.default;
    else if (typeof inner.createAdapter === "function") candidate = inner.createAdapter;
  }
  if (candidate === undefined) {
    throw new AdapterLoadError(
      spec,
      file,
      "has no default export and no createAdapter export (write `export default defineAdapter((init) => ({ … }))`)",
    );
  }
  if (typeof candidate !== "function") {
    const which = mod.default !== undefined ? "default export" : "createAdapter export";
    throw new AdapterLoadError(
      spec,
      file,
      `${which} is not a function (an AdapterFactory), got ${describe(candidate)}`,
    );
  }
  return candidate as AdapterFactory;
}

/** What the returned object lacks to be a RemoteNetworkAdapter; empty if nothing. */
function adapterShapeProblems(adapter: unknown): string[] {
  if (typeof adapter !== "object" || adapter === null)
    return [`is ${describe(adapter)}, not an adapter object`];
  const a = adapter as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof a.name !== "string" || a.name === "") problems.push("lacks name (a non-empty string)");
  if (typeof a.start !== "function") problems.push("lacks start (a function)");
  if (typeof a.stop !== "function") problems.push("lacks stop (a function)");
  for (const method of OPTIONAL_METHODS) {
    if (a[method] !== undefined && typeof a[method] !== "function") {
      problems.push(`${method} must be a function when present, got ${describe(a[method])}`);
    }
  }
  return problems;
}

/** What the framework hands the factory besides `configDir`. */
export interface LoadAdapterInit {
  /** The config's `adapter.config` mapping. */
  config: unknown;
  log: Logger;
}

/**
 * Resolves `spec` from `configDir`, imports it, calls its factory with `{ config, log,
 * configDir }` and checks the result is an adapter (a string `name`, functions `start` and
 * `stop`). Does not start it. Every failure is an AdapterLoadError naming the spec and the
 * resolved path: not found, no default export, default export not a function, factory
 * threw (with its message), result lacking name/start/stop.
 */
export async function loadAdapter(
  spec: string,
  configDir: string,
  init: LoadAdapterInit,
): Promise<RemoteNetworkAdapter> {
  const file = await resolveAdapterModule(spec, configDir);
  const mod = await importModule(spec, file);
  const factory = findFactory(spec, file, mod);
  let adapter: unknown;
  try {
    adapter = await factory({ config: init.config, log: init.log, configDir: resolve(configDir) });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new AdapterLoadError(spec, file, `the adapter factory threw: ${message}`, { cause: err });
  }
  const problems = adapterShapeProblems(adapter);
  if (problems.length > 0) {
    throw new AdapterLoadError(
      spec,
      file,
      `the factory's result is not an adapter: it ${problems.join("; ")}`,
    );
  }
  return adapter as RemoteNetworkAdapter;
}
