import { existsSync, mkdirSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import Keyv, { type KeyvStoreAdapter } from "keyv";
import type { Logger } from "../common/logger.js";
import { KeyvStore } from "./keyv-store.js";
import { createPostgresAdapter } from "./postgres-adapter.js";
import { createRedisAdapter } from "./redis-adapter.js";
import { createSqliteAdapter } from "./sqlite-adapter.js";
import type { Store, StoreBackend } from "./store.js";
import { StoreError } from "./store-error.js";
import { PREFIX_PATTERN } from "./storage-key.js";

/** Masks the password of a URL such as postgres://user:secret@host/db for logs and errors. */
export function describeStoreUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//***@");
  }
}

export interface OpenStoreOptions {
  /** The folder `sqlite://relative/path` is resolved against (default: the working directory). */
  baseDir?: string;
  /**
   * Every key this Store writes starts with `<prefix>:` (default "bridgekit"). Two bridges,
   * or two test runs, sharing one PostgreSQL database or Redis server stay apart by using
   * different prefixes. 1-64 of letters, digits, `_`, `.`, `-`.
   */
  prefix?: string;
  /** How long to wait for PostgreSQL or Redis to accept a connection, in ms (default 5000). */
  connectTimeoutMs?: number;
  /**
   * How long one PostgreSQL query or Redis command may take (including, for Redis, time
   * waiting for a reconnection) before it rejects, in ms (default 10000).
   */
  operationTimeoutMs?: number;
  /** PostgreSQL connections in this Store's pool (default 10). */
  poolSize?: number;
  /** Where connection problems after start-up are reported (warn level); default: nowhere. */
  logger?: Logger;
}

const TABLE = "bridgekit";

/**
 * Opens a store by URL:
 * - `memory://`: in-process, gone on exit (tests, throwaway bridges);
 * - `sqlite://relative/path.db` or `sqlite:///absolute/path.db`: the embedded default, one file;
 * - `postgres://user@host:5432/db` (or `postgresql://`): shared, for bigger deployments;
 * - `redis://host:6379` (or `rediss://`): shared; configure Redis to persist (AOF) or it is not durable.
 * Connects before returning: fails within connectTimeoutMs (plus one query) with a StoreError
 * naming the (password-masked) URL if the backend cannot be reached or the file cannot be
 * opened. One Store holds one connection pool, shared by all its namespaces.
 */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const description = describeStoreUrl(url);
  const prefix = opts.prefix ?? "bridgekit";
  if (!PREFIX_PATTERN.test(prefix))
    throw new TypeError(
      `store prefix ${JSON.stringify(prefix)} is not valid (1-64 of letters, digits, _ . -, starting with a letter or digit)`,
    );
  const connectTimeoutMs = positive("connectTimeoutMs", opts.connectTimeoutMs ?? 5_000);
  const operationTimeoutMs = positive("operationTimeoutMs", opts.operationTimeoutMs ?? 10_000);
  const poolSize = positive("poolSize", opts.poolSize ?? 10);
  const onConnectionError = (err: Error) =>
    opts.logger?.warn(
      { store: description, err: mask(err.message, url, description) },
      "store connection error",
    );
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  let backend: StoreBackend;
  let adapter: KeyvStoreAdapter | Map<unknown, unknown>;
  try {
    switch (scheme) {
      case "memory":
        backend = "memory";
        adapter = new Map();
        break;
      case "sqlite": {
        backend = "sqlite";
        const path = sqlitePath(url, opts.baseDir ?? process.cwd());
        makeDirectory(dirname(path));
        adapter = await createSqliteAdapter({
          path,
          table: TABLE,
          synchronous: sqliteSynchronous(url),
          openTimeoutMs: connectTimeoutMs,
          // A statement waiting for another connection's lock blocks the event loop
          // (better-sqlite3 is synchronous). One bridge process owns a store, so only an
          // outsider (a backup, the sqlite3 CLI) makes it wait: 10 s, as before, rather than
          // failing the write at once.
          busyTimeoutMs: 10_000,
        });
        break;
      }
      case "postgres":
      case "postgresql":
        backend = "postgres";
        adapter = await createPostgresAdapter({
          uri: url,
          table: TABLE,
          connectTimeoutMs,
          operationTimeoutMs,
          poolSize,
          applicationName: `bridgekit:${prefix}`,
          onConnectionError,
        });
        break;
      case "redis":
      case "rediss":
        backend = "redis";
        adapter = await createRedisAdapter({
          url,
          connectTimeoutMs,
          operationTimeoutMs,
          clientName: `bridgekit:${prefix}`,
          onConnectionError,
        });
        break;
      default:
        throw new TypeError(
          `store URL "${description}" has an unsupported scheme; use memory://, sqlite://path, postgres://… or redis://…`,
        );
    }
  } catch (err) {
    if (err instanceof TypeError) throw err;
    throw new StoreError(description, `cannot open: ${mask((err as Error).message, url, description)}`, {
      cause: err,
    });
  }
  // namespace undefined: keys are composed by KeyvStore, so Keyv and the adapters add none.
  const keyv = new Keyv({ store: adapter, namespace: undefined, throwOnErrors: true, emitErrors: false });
  const store = new KeyvStore(keyv, description, backend, prefix, [url]);
  try {
    // Touch the backend now, so a bad URL or unusable file fails at start-up, not on the first event.
    await store.namespace("probe").get("probe");
  } catch (err) {
    await store.close().catch(() => undefined); // the open error below is the one that matters
    const cause = (err as { cause?: Error }).cause ?? (err as Error);
    throw new StoreError(description, `cannot open: ${mask(cause.message, url, description)}`, {
      cause: err,
    });
  }
  return store;
}

/** The `synchronous` pragma a sqlite URL asks for: `?synchronous=full` or the default NORMAL. */
export function sqliteSynchronous(url: string): "NORMAL" | "FULL" {
  const query = url.includes("?") ? url.slice(url.indexOf("?") + 1) : "";
  const value = new URLSearchParams(query).get("synchronous");
  if (value === null || value.toLowerCase() === "normal") return "NORMAL";
  if (value.toLowerCase() === "full") return "FULL";
  throw new TypeError(`store URL "${url}": synchronous must be "normal" or "full", got "${value}"`);
}

/** `sqlite://relative/x.db` is relative to baseDir; `sqlite:///abs/x.db` is absolute. */
export function sqlitePath(url: string, baseDir: string): string {
  const rest = url.replace(/^sqlite:\/\//i, "");
  if (rest === "") throw new TypeError(`store URL "${url}" names no file; use sqlite://data/bridge.db`);
  const path = decodeURIComponent(rest.split("?")[0]!);
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new TypeError(`openStore: ${name} must be a positive number, got ${value}`);
  return value;
}

function mask(message: string, url: string, description: string): string {
  return url === "" ? message : message.split(url).join(description);
}

/**
 * Creates a folder and its missing parents. Not mkdirSync's `recursive`: on Node 20 it loops
 * forever when a parent exists but cannot hold folders (`/proc/nope` gets ENOENT, `/proc`
 * EEXIST, and so on), blocking the process instead of failing.
 */
function makeDirectory(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) makeDirectory(parent);
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
}
