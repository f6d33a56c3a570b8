// The four store backends the store tests run on. PostgreSQL and Redis come from
// BRIDGEKIT_TEST_POSTGRES_URL / BRIDGEKIT_TEST_REDIS_URL; each test run uses its own key
// prefix, so parallel runs on the shared servers never see each other's keys. A backend
// that cannot be reached FAILS the tests that need it, naming the URL and the variable.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { after } from "node:test";
import { openStore, type OpenStoreOptions, type Store, type StoreBackend } from "../../src/store/index.js";

export const POSTGRES_URL =
  process.env.BRIDGEKIT_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.BRIDGEKIT_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface Backend {
  name: StoreBackend;
  /** The URL to open (for sqlite, a file in a per-process temp folder). */
  url: string;
  /** Whether data survives close and reopen. */
  persistent: boolean;
  /** The env var that names the URL, for failure messages. */
  envVar?: string;
}

const tempDir = mkdtempSync(join(tmpdir(), "bridgekit-store-test-"));
after(() => rmSync(tempDir, { recursive: true, force: true }));

export const BACKENDS: Backend[] = [
  { name: "memory", url: "memory://", persistent: false },
  { name: "sqlite", url: `sqlite://${join(tempDir, "store.db")}`, persistent: true },
  { name: "postgres", url: POSTGRES_URL, persistent: true, envVar: "BRIDGEKIT_TEST_POSTGRES_URL" },
  { name: "redis", url: REDIS_URL, persistent: true, envVar: "BRIDGEKIT_TEST_REDIS_URL" },
];

/** The backends a repository test runs on; `all` adds PostgreSQL and Redis to memory and sqlite. */
export function backendsFor(scope: "local" | "all"): Backend[] {
  return scope === "all" ? BACKENDS : BACKENDS.filter((b) => b.name === "memory" || b.name === "sqlite");
}

/** A key prefix no other test run uses. */
export function uniquePrefix(label = "t"): string {
  return `test-${label}-${process.pid}-${randomBytes(6).toString("hex")}`;
}

let sqliteCounter = 0;

/**
 * Opens a store on a backend with a fresh prefix (or the one given, to reopen). For sqlite,
 * `fresh: true` gives a new file. Unreachable backends throw an error naming URL and env var.
 */
export async function openTestStore(
  backend: Backend,
  opts: OpenStoreOptions & { fresh?: boolean; url?: string } = {},
): Promise<Store> {
  let url = opts.url ?? backend.url;
  if (backend.name === "sqlite" && opts.fresh)
    url = `sqlite://${join(tempDir, `store-${++sqliteCounter}.db`)}`;
  try {
    return await openStore(url, { prefix: uniquePrefix(backend.name), connectTimeoutMs: 3_000, ...opts });
  } catch (err) {
    const hint = backend.envVar
      ? ` Start it (scripts/services/ensure-services.sh) or point ${backend.envVar} at a running ${backend.name}.`
      : "";
    throw new Error(
      `the ${backend.name} store at ${url} cannot be opened: ${(err as Error).message}.${hint}`,
      {
        cause: err,
      },
    );
  }
}

/** Opens the same data as `store` (closed or not) again: same prefix, and for sqlite the same file. */
export function reopenTestStore(backend: Backend, store: Store): Promise<Store> {
  const url = store.backend === "sqlite" ? `sqlite://${new URL(store.description).pathname}` : undefined;
  return openTestStore(backend, { prefix: store.prefix, url });
}
