import { createRequire } from "node:module";
import type { KeyvStoreAdapter } from "keyv";

/** The part of node-postgres' Pool this module uses (pg ships no types of its own). */
interface PgPool {
  query(sql: string, values?: unknown): Promise<{ rows: unknown[] }>;
  end(): Promise<void>;
  on(event: "error", listener: (err: Error) => void): unknown;
}
type PgPoolConstructor = new (config: Record<string, unknown>) => PgPool;

export interface PostgresAdapterOptions {
  /** The connection URL, as given (with password). Never logged. */
  uri: string;
  table: string;
  /** Bound on opening a connection, in ms. */
  connectTimeoutMs: number;
  /** Bound on one query, in ms. */
  operationTimeoutMs: number;
  /** Connections in the pool (default 10). */
  poolSize: number;
  /** Shown in pg_stat_activity.application_name (at most 63 bytes are kept). */
  applicationName: string;
  /** Called when an idle pooled connection dies (server restart, pg_terminate_backend). */
  onConnectionError: (err: Error) => void;
}

/**
 * A @keyv/postgres adapter with a connection pool of its own. @keyv/postgres 2.x keeps ONE
 * module-wide pool, replaced (without being closed) whenever a second URL is opened and
 * ended by any instance's disconnect(): two stores in one process would close each other's
 * connections. This subclass gives every Store its own pg.Pool, with connect and query
 * timeouts, and an error listener so a connection killed while idle is dropped from the
 * pool (the next query opens a new one) instead of crashing the process.
 */
export async function createPostgresAdapter(opts: PostgresAdapterOptions): Promise<KeyvStoreAdapter> {
  const { default: KeyvPostgres } = await import("@keyv/postgres");
  // The pg that @keyv/postgres itself depends on, resolved from its own location.
  const requireFromAdapter = createRequire(import.meta.resolve("@keyv/postgres"));
  const { Pool } = requireFromAdapter("pg") as { Pool: PgPoolConstructor };

  class PooledKeyvPostgres extends KeyvPostgres {
    // Assigned by connect(), which the base constructor calls: `declare` keeps a class
    // field initialiser from overwriting it after super() returns.
    declare pool: PgPool;

    override connect(): Promise<(sql: string, values?: unknown) => Promise<unknown[]>> {
      this.pool = new Pool({
        connectionString: opts.uri,
        max: opts.poolSize,
        connectionTimeoutMillis: opts.connectTimeoutMs,
        query_timeout: opts.operationTimeoutMs,
        idleTimeoutMillis: 30_000,
        application_name: opts.applicationName,
      });
      this.pool.on("error", opts.onConnectionError);
      const pool = this.pool;
      return Promise.resolve(async (sql: string, values?: unknown) => (await pool.query(sql, values)).rows);
    }

    override async disconnect(): Promise<void> {
      await this.pool.end();
    }
  }

  return new PooledKeyvPostgres({ uri: opts.uri, table: opts.table });
}
