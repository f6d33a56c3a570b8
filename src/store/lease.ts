/**
 * One writer per store: a lease a bridge process must hold before it writes, so that a second
 * process on the same store (and prefix) either refuses to start or, as a standby, waits and
 * takes over within a few seconds after the active one dies.
 *
 * Each backend keeps the lease where its own guarantees are:
 * - PostgreSQL: a row in `bridgekit_lease` (name = the store prefix) with the holder, a
 *   fencing token and an expiry in the server's clock, renewed every ttl/3;
 * - Redis: the key `<prefix>:lease` set with NX and a PX expiry, renewed by a script that
 *   checks the holder; the token is `INCR <prefix>:lease-token`;
 * - sqlite: an exclusive lock on the file `<db>-lease` (another sqlite database) held by an
 *   open transaction; the operating system releases it when the process dies;
 * - memory: nothing to share; always held.
 *
 * Fencing: a holder that cannot renew (its store is unreachable, or the process was paused
 * longer than the ttl) stops being `valid` once its own deadline, renewal time plus ttl minus
 * a margin, has passed, measured on its monotonic clock from before the renewal was sent. The
 * fenced store (fencedStore) refuses every write then, and `onLost` is told, so a paused old
 * process cannot write after a standby took over. The remaining window: a write checked just
 * before the deadline and delivered after it; the margin (ttl/3) covers network latency, not a
 * pause in between.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import type { Logger } from "../common/logger.js";
import { StoreError } from "./store-error.js";
import type { KeyValue, Store } from "./store.js";

/** A held lease. */
export interface WriterLease {
  /** Who holds it: host, pid and a random part. */
  readonly holder: string;
  /** Increases with every new holder (1 on memory and sqlite's first). */
  readonly token: number;
  /** True while held and renewed within its deadline; writes are refused once false. */
  valid(): boolean;
  /** Called once, when the lease is lost (not on release). */
  onLost(listener: (reason: string) => void): void;
  /** Gives the lease up (the next holder need not wait for it to expire). Idempotent. */
  release(): Promise<void>;
}

export interface LeaseOptions {
  /** The store's key prefix: one lease per prefix. */
  prefix: string;
  /** How long a lease lives without renewal (default 5 000 ms; renewed every third of it). */
  ttlMs?: number;
  /** Wait for the lease (a standby) instead of failing at once when another process holds it. */
  standby?: boolean;
  /** Stops a standby's wait. */
  signal?: AbortSignal;
  log?: Logger;
  /** The folder a relative sqlite URL is resolved against (as openStore's baseDir). */
  baseDir?: string;
  /** For tests: the holder name (default host:pid:random). */
  holder?: string;
}

/** Thrown when another process holds the lease and this one is not a standby. */
export class LeaseHeldError extends Error {
  override readonly name = "LeaseHeldError";
}

/** One backend's way of holding a lease: try once, renew, give up. */
interface LeaseBackend {
  /** The fencing token if this holder got the lease; undefined if another holds it. */
  tryAcquire(holder: string, ttlMs: number): Promise<number | undefined>;
  /** True if the lease is still this holder's (and was extended). */
  renew(holder: string, token: number, ttlMs: number): Promise<boolean>;
  release(holder: string, token: number): Promise<void>;
  /** Who holds it now, for the error message (best effort). */
  describeHolder(): Promise<string | undefined>;
  close(): Promise<void>;
}

/**
 * 5 s: a standby takes over 3.5 to 6.5 s after the active process dies; the holder renews
 * every 1.7 s and stops writing if no renewal got through for 3.3 s.
 */
export const DEFAULT_LEASE_TTL_MS = 5_000;

/**
 * Takes the writer lease of the store opened from `url`: resolves once held. When another
 * process holds it: a standby waits as long as it takes; otherwise this waits up to 1.5 ttl
 * (the lease of a process that died expires by then) and rejects with LeaseHeldError. Tries
 * every ttl/4.
 */
export async function acquireWriterLease(
  url: string,
  store: Pick<Store, "backend" | "description">,
  options: LeaseOptions,
): Promise<WriterLease> {
  const ttlMs = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 300)
    throw new RangeError(`lease ttl must be an integer of at least 300 ms, got ${String(ttlMs)}`);
  const holder = options.holder ?? `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  const backend = await openLeaseBackend(url, store, options.prefix, options.baseDir);
  // A process that died leaves its lease behind until it expires: without `standby`, wait
  // that long (it may be this process's own previous run, restarted by a supervisor), then
  // refuse, since a holder still renewing it is alive.
  const refuseAfter = performance.now() + ttlMs + Math.floor(ttlMs / 2);
  try {
    for (let waited = false; ; waited = true) {
      const started = performance.now();
      const token = await backend.tryAcquire(holder, ttlMs);
      if (token !== undefined) {
        if (waited) options.log?.info({ holder, token }, "took over the store's writer lease");
        return new HeldLease(backend, holder, token, ttlMs, started, options.log);
      }
      if (!options.standby && performance.now() >= refuseAfter) {
        const other = await backend.describeHolder().catch(() => undefined);
        throw new LeaseHeldError(
          `store ${store.description} is in use by another bridge process${other ? ` (${other})` : ""}: ` +
            "stop it, or start this one as a standby (lease.standby: true) to take over when it stops",
        );
      }
      if (!waited)
        options.log?.info(
          options.standby
            ? "standby: another process holds the store's writer lease; waiting to take over"
            : `another process holds the store's writer lease; waiting up to ${ttlMs} ms for it to expire`,
        );
      await sleep(Math.max(100, Math.floor(ttlMs / 4)), options.signal);
    }
  } catch (err) {
    await backend.close().catch(() => undefined);
    throw err;
  }
}

class HeldLease implements WriterLease {
  private deadline: number;
  private readonly timer: NodeJS.Timeout;
  private lost: string | undefined;
  private released = false;
  private readonly listeners: Array<(reason: string) => void> = [];

  constructor(
    private readonly backend: LeaseBackend,
    readonly holder: string,
    readonly token: number,
    private readonly ttlMs: number,
    acquiredAt: number,
    private readonly log: Logger | undefined,
  ) {
    this.deadline = acquiredAt + this.validFor();
    this.timer = setInterval(() => void this.renew(), Math.floor(ttlMs / 3));
    this.timer.unref();
  }

  valid(): boolean {
    return this.lost === undefined && !this.released && performance.now() < this.deadline;
  }

  onLost(listener: (reason: string) => void): void {
    if (this.lost !== undefined) listener(this.lost);
    else this.listeners.push(listener);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    try {
      if (this.lost === undefined) await this.backend.release(this.holder, this.token);
    } finally {
      await this.backend.close();
    }
  }

  /** The time a renewal sent at t keeps the lease valid for, on this process's clock. */
  private validFor(): number {
    return this.ttlMs - Math.floor(this.ttlMs / 3);
  }

  private async renew(): Promise<void> {
    if (this.lost !== undefined || this.released) return;
    const sent = performance.now();
    if (sent >= this.deadline) return this.lose("the lease expired before it could be renewed");
    try {
      if (await this.backend.renew(this.holder, this.token, this.ttlMs)) {
        this.deadline = sent + this.validFor();
        return;
      }
      this.lose("another process holds the lease now");
    } catch (err) {
      this.log?.warn({ err }, "could not renew the store's writer lease; trying again");
      if (performance.now() >= this.deadline) this.lose("the lease could not be renewed in time");
    }
  }

  private lose(reason: string): void {
    if (this.lost !== undefined) return;
    this.lost = reason;
    clearInterval(this.timer);
    this.log?.error({ reason }, "lost the store's writer lease: this process must stop writing");
    for (const listener of this.listeners.splice(0)) listener(reason);
  }
}

/**
 * The store with every write checked against the lease: once it is no longer valid, writes
 * reject with a StoreError and nothing reaches the backend. Reads pass.
 */
export function fencedStore(store: Store, lease: () => WriterLease | undefined): Store {
  /** The error for a write now, or undefined when it may go ahead. */
  const refusal = (what: string): StoreError | undefined =>
    lease()?.valid()
      ? undefined
      : new StoreError(
          store.description,
          `${what} refused: this process does not hold the store's writer lease (another process may be writing)`,
        );
  return {
    description: store.description,
    backend: store.backend,
    prefix: store.prefix,
    close: () => store.close(),
    namespace<V>(name: string): KeyValue<V> {
      const kv = store.namespace<V>(name);
      const guarded =
        <A extends unknown[], R>(op: string, fn: (...args: A) => Promise<R>) =>
        (...args: A): Promise<R> => {
          const refused = refusal(`${op} ${name}`);
          return refused ? Promise.reject(refused) : fn(...args);
        };
      return {
        get: (k) => kv.get(k),
        getMany: (keys) => kv.getMany(keys),
        has: (k) => kv.has(k),
        set: guarded("set", (k: string, v: V, ttl?: number) => kv.set(k, v, ttl)),
        setMany: guarded("setMany", (entries: ReadonlyArray<readonly [string, V]>) => kv.setMany(entries)),
        delete: guarded("delete", (k: string) => kv.delete(k)),
        deleteMany: guarded("deleteMany", (keys: readonly string[]) => kv.deleteMany(keys)),
      };
    },
  };
}

/** The lease for the database `url` names (memory:// or anything unknown: the store object's). */
async function openLeaseBackend(
  url: string,
  store: object,
  prefix: string,
  baseDir: string | undefined,
): Promise<LeaseBackend> {
  switch (/^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()) {
    case "sqlite":
      return sqliteLease(url, baseDir ?? process.cwd());
    case "postgres":
    case "postgresql":
      return postgresLease(url, prefix);
    case "redis":
    case "rediss":
      return redisLease(url, prefix);
    default:
      return memoryLease(store, prefix);
  }
}

/** Memory stores' leases: one holder per store object and prefix, within this process. */
interface MemoryHolder {
  holder: string | undefined;
  token: number;
}
const memoryHolders = new WeakMap<object, Map<string, MemoryHolder>>();

function memoryLease(store: object, prefix: string): LeaseBackend {
  let byPrefix = memoryHolders.get(store);
  if (!byPrefix) memoryHolders.set(store, (byPrefix = new Map<string, MemoryHolder>()));
  const state = byPrefix.get(prefix) ?? { holder: undefined, token: 0 };
  byPrefix.set(prefix, state);
  return {
    tryAcquire(holder) {
      if (state.holder !== undefined) return Promise.resolve(undefined);
      state.holder = holder;
      return Promise.resolve(++state.token);
    },
    renew: (holder, token) => Promise.resolve(state.holder === holder && state.token === token),
    release(holder, token) {
      if (state.holder === holder && state.token === token) state.holder = undefined;
      return Promise.resolve();
    },
    describeHolder: () => Promise.resolve(state.holder === undefined ? undefined : `holder ${state.holder}`),
    close: () => Promise.resolve(),
  };
}

/** An exclusive lock on `<db>-lease`, held by an open write transaction. */
async function sqliteLease(url: string, baseDir: string): Promise<LeaseBackend> {
  const { sqlitePath } = await import("./open-store.js");
  const { default: Database } = await import("better-sqlite3");
  const path = `${sqlitePath(url, baseDir)}-lease`;
  const db = new Database(path, { timeout: 0 });
  let holding = false;
  return {
    tryAcquire(holder) {
      try {
        db.exec("BEGIN EXCLUSIVE");
      } catch (err) {
        if ((err as { code?: string }).code?.startsWith("SQLITE_BUSY")) return Promise.resolve(undefined);
        throw err;
      }
      holding = true;
      db.exec(
        "CREATE TABLE IF NOT EXISTS lease (id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT, token INTEGER)",
      );
      const row = db.prepare("SELECT token FROM lease WHERE id = 1").get() as { token: number } | undefined;
      const token = (row?.token ?? 0) + 1;
      db.prepare("INSERT OR REPLACE INTO lease (id, holder, token) VALUES (1, ?, ?)").run(holder, token);
      // The transaction stays open: its exclusive lock is the lease, until release or exit.
      return Promise.resolve(token);
    },
    renew: () => Promise.resolve(holding),
    release() {
      if (holding) db.exec("COMMIT");
      holding = false;
      return Promise.resolve();
    },
    describeHolder: () => Promise.resolve(`the lock on ${path} is held`),
    close() {
      if (holding) db.exec("COMMIT");
      holding = false;
      db.close();
      return Promise.resolve();
    },
  };
}

interface PgClient {
  connect(): Promise<void>;
  query(
    sql: string,
    values?: unknown[],
  ): Promise<{ rows: Array<Record<string, unknown>>; rowCount: number | null }>;
  end(): Promise<void>;
  on(event: "error", listener: (err: Error) => void): unknown;
}

async function postgresLease(url: string, prefix: string): Promise<LeaseBackend> {
  const requireFromAdapter = createRequire(import.meta.resolve("@keyv/postgres"));
  const { Client } = requireFromAdapter("pg") as {
    Client: new (config: Record<string, unknown>) => PgClient;
  };
  const client = new Client({
    connectionString: url,
    connectionTimeoutMillis: 5_000,
    query_timeout: 5_000,
    application_name: `bridgekit-lease:${prefix}`,
  });
  client.on("error", () => undefined); // a dead connection shows as failed renewals
  await client.connect();
  try {
    await client.query(
      "CREATE TABLE IF NOT EXISTS bridgekit_lease (name TEXT PRIMARY KEY, holder TEXT NOT NULL, token BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)",
    );
  } catch (err) {
    // Two processes creating it at once: one of them sees a duplicate; the table exists.
    if (!["23505", "42P07"].includes((err as { code?: string }).code ?? "")) {
      await client.end();
      throw err;
    }
  }
  return {
    async tryAcquire(holder, ttlMs) {
      // Expiry in the server's clock, so the holders' clocks need not agree.
      const r = await client.query(
        `INSERT INTO bridgekit_lease AS l (name, holder, token, expires_at)
         VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
         ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, token = l.token + 1, expires_at = EXCLUDED.expires_at
         WHERE l.expires_at < now()
         RETURNING token`,
        [prefix, holder, ttlMs],
      );
      return r.rows.length === 1 ? Number(r.rows[0]!.token) : undefined;
    },
    async renew(holder, token, ttlMs) {
      const r = await client.query(
        "UPDATE bridgekit_lease SET expires_at = now() + $4 * interval '1 millisecond' WHERE name = $1 AND holder = $2 AND token = $3",
        [prefix, holder, token, ttlMs],
      );
      return r.rowCount === 1;
    },
    async release(holder, token) {
      await client.query(
        "UPDATE bridgekit_lease SET expires_at = now() - interval '1 second' WHERE name = $1 AND holder = $2 AND token = $3",
        [prefix, holder, token],
      );
    },
    async describeHolder() {
      const r = await client.query(
        "SELECT holder, round(extract(epoch from expires_at - now()) * 1000) AS ms FROM bridgekit_lease WHERE name = $1",
        [prefix],
      );
      const row = r.rows[0];
      return row
        ? `holder ${String(row.holder)}, lease renewed until ${String(row.ms)} ms from now`
        : undefined;
    },
    close: () => client.end(),
  };
}

const REDIS_ACQUIRE = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
  return token
end
return 0`;
const REDIS_RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const REDIS_RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

async function redisLease(url: string, prefix: string): Promise<LeaseBackend> {
  const { createClient } = await import("@keyv/redis");
  const client = createClient({
    url,
    name: `bridgekit-lease:${prefix}`,
    socket: {
      connectTimeout: 5_000,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1_000),
    },
    commandOptions: { timeout: 5_000 },
  });
  client.on("error", () => undefined); // a dead connection shows as failed renewals
  await client.connect();
  const keys = [`${prefix}:lease`, `${prefix}:lease-token`];
  const run = (script: string, args: string[]) => client.eval(script, { keys, arguments: args });
  return {
    async tryAcquire(holder, ttlMs) {
      const token = Number(await run(REDIS_ACQUIRE, [holder, String(ttlMs)]));
      return token > 0 ? token : undefined;
    },
    async renew(holder, token, ttlMs) {
      return Number(await run(REDIS_RENEW, [`${holder} ${token}`, String(ttlMs)])) === 1;
    },
    async release(holder, token) {
      await run(REDIS_RELEASE, [`${holder} ${token}`]);
    },
    async describeHolder() {
      const value = await client.get(keys[0]!);
      const ttl = await client.pTTL(keys[0]!);
      return value ? `holder ${value.split(" ")[0]}, lease expires in ${ttl} ms` : undefined;
    },
    async close() {
      client.destroy();
      return Promise.resolve();
    },
  };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}
