import { mkdirSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import Keyv from "keyv";
import type { KeyValue, Store } from "./store.js";

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
}

/**
 * Opens a store by URL:
 * - `memory://`: in-process, gone on exit (tests, throwaway bridges);
 * - `sqlite://relative/path.db` or `sqlite:///absolute/path.db`: the embedded default, one file;
 * - `postgres://user@host:5432/db` (or `postgresql://`): shared, for bigger deployments;
 * - `redis://host:6379` (or `rediss://`): shared; configure Redis to persist (AOF) or it is not durable.
 * Fails with an error naming the (password-masked) URL if the backend cannot be reached.
 */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const description = describeStoreUrl(url);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  let adapter: unknown;
  switch (scheme) {
    case "memory":
      adapter = new Map();
      break;
    case "sqlite": {
      const path = sqlitePath(url, opts.baseDir ?? process.cwd());
      mkdirSync(dirname(path), { recursive: true });
      const { default: KeyvSqlite } = await import("@keyv/sqlite");
      adapter = new KeyvSqlite({ uri: `sqlite://${path}`, table: "bridgekit", busyTimeout: 10_000 });
      break;
    }
    case "postgres":
    case "postgresql": {
      const { default: KeyvPostgres } = await import("@keyv/postgres");
      adapter = new KeyvPostgres({ uri: url, table: "bridgekit" });
      break;
    }
    case "redis":
    case "rediss": {
      const { default: KeyvRedis } = await import("@keyv/redis");
      adapter = new KeyvRedis(url, { throwOnConnectError: true, throwOnErrors: true });
      break;
    }
    default:
      throw new Error(
        `store URL "${description}" has an unsupported scheme; use memory://, sqlite://path, postgres://… or redis://…`,
      );
  }
  const keyv = new Keyv({ store: adapter, namespace: "bridgekit", throwOnErrors: true, emitErrors: false });
  const store = new KeyvStore(keyv, description);
  try {
    await keyv.get("__probe__"); // connect now, so a bad URL fails at start-up, not on the first event
  } catch (err) {
    await store.close().catch(() => undefined);
    throw new Error(`cannot open store ${description}: ${(err as Error).message}`, { cause: err });
  }
  return store;
}

/** `sqlite://relative/x.db` is relative to baseDir; `sqlite:///abs/x.db` is absolute. */
export function sqlitePath(url: string, baseDir: string): string {
  const rest = url.replace(/^sqlite:\/\//i, "");
  if (rest === "") throw new Error(`store URL "${url}" names no file; use sqlite://data/bridge.db`);
  const path = decodeURIComponent(rest.split("?")[0]!);
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

class KeyvStore implements Store {
  constructor(
    private readonly keyv: Keyv,
    readonly description: string,
  ) {}

  namespace<V>(name: string): KeyValue<V> {
    if (!/^[a-z][a-z0-9_.-]*$/i.test(name))
      throw new TypeError(`store namespace "${name}" is not an identifier`);
    const keyv = this.keyv;
    const k = (key: string) => `${name}:${key}`;
    return {
      get: async (key) => (await keyv.get<V>(k(key))) ?? undefined,
      getMany: async (keys) =>
        keys.length === 0
          ? []
          : ((await keyv.get<V>(keys.map(k))) as Array<V | undefined>).map((v) => v ?? undefined),
      set: async (key, value, ttlMs) => {
        const ok = await keyv.set(k(key), value, ttlMs);
        if (!ok) throw new Error(`store ${this.description} refused to write ${name}:${key}`);
      },
      delete: (key) => keyv.delete(k(key)),
      has: (key) => keyv.has(k(key)),
    };
  }

  async close(): Promise<void> {
    await this.keyv.disconnect();
  }
}
