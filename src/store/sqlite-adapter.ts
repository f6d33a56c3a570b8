import type { KeyvStoreAdapter } from "keyv";

export interface SqliteAdapterOptions {
  /** The database file's absolute path. */
  path: string;
  table: string;
  /** How long a statement waits for a lock held by another connection, in ms. */
  busyTimeoutMs: number;
}

/** The adapter plus a raw query, for pragmas. */
export interface SqliteAdapter {
  adapter: KeyvStoreAdapter;
  query(sql: string, ...params: unknown[]): Promise<unknown[]>;
}

/**
 * A @keyv/sqlite adapter whose batch operations are one statement each: @keyv/sqlite 4 has
 * no setMany (Keyv would issue one upsert per key, each its own transaction) and reads every
 * row before deleting it. A single statement is atomic in SQLite, so a batch is written
 * whole or not at all.
 */
export async function createSqliteAdapter(opts: SqliteAdapterOptions): Promise<SqliteAdapter> {
  const { default: KeyvSqlite } = await import("@keyv/sqlite");
  const table = opts.table;

  class BatchingKeyvSqlite extends KeyvSqlite {
    async setMany(entries: Array<{ key: string; value: unknown }>): Promise<boolean[]> {
      if (entries.length === 0) return [];
      // WHERE true: SQLite needs it to tell an upsert's ON CONFLICT from a join's ON.
      await this.query(
        `INSERT INTO ${table} (key, value)
         SELECT json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]') FROM json_each(?) AS e WHERE true
         ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
        JSON.stringify(entries.map((e) => [e.key, e.value])),
      );
      return entries.map(() => true);
    }

    override async delete(key: string): Promise<boolean> {
      const rows = (await this.query(`DELETE FROM ${table} WHERE key = ? RETURNING key`, key)) as unknown[];
      return rows.length > 0;
    }

    override async deleteMany(keys: string[]): Promise<boolean> {
      if (keys.length === 0) return false;
      const rows = (await this.query(
        `DELETE FROM ${table} WHERE key IN (SELECT value FROM json_each(?)) RETURNING key`,
        JSON.stringify(keys),
      )) as unknown[];
      return rows.length > 0;
    }
  }

  const sqlite = new BatchingKeyvSqlite({
    uri: `sqlite://${opts.path}`,
    table,
    busyTimeout: opts.busyTimeoutMs,
  });
  return {
    adapter: sqlite as unknown as KeyvStoreAdapter,
    query: (sql, ...params) => sqlite.query(sql, ...params) as Promise<unknown[]>,
  };
}
