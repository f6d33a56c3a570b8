/**
 * Writes ghosts and portals straight into a bridgekit sqlite store file in one SQL
 * transaction (with the sqlite3 command-line tool), in exactly the rows GhostStore,
 * PortalStore and the intents' registration records write. Through the Store API each
 * record is its own fsync'd write, which makes 100 000 ghosts take tens of minutes on a
 * slow disk; the server checks a sample of the records through the API after it opens them.
 */
import { spawnSync } from "node:child_process";
import { storageKey } from "../../src/store/storage-key.js";
import { BENCH_DOMAIN } from "./transactions.js";

export function seedSqliteFile(file: string, prefix: string, ghosts: number, portals: number): void {
  const rows: string[] = [];
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const row = (ns: string, key: string, value: unknown) =>
    rows.push(`(${q(storageKey(prefix, ns, key))},${q(JSON.stringify({ value }))})`);
  for (let i = 0; i < ghosts; i++) {
    const userId = `@bench_user${i}:${BENCH_DOMAIN}`;
    row("ghosts.by-user", userId, `user${i}`);
    row("ghosts", `user${i}`, { remoteId: `user${i}`, userId, profile: {} });
    row("intents", `registered ${userId}`, true);
  }
  for (let i = 0; i < portals; i++) {
    const roomId = `!seeded${i}:${BENCH_DOMAIN}`;
    const alias = `#bench_seeded${i}:${BENCH_DOMAIN}`;
    row("portals.by-room", roomId, `seeded${i}`);
    row("portals.by-alias", alias, `seeded${i}`);
    row("portals", `seeded${i}`, { remoteId: `seeded${i}`, roomId, alias });
  }
  const sql = [
    "CREATE TABLE IF NOT EXISTS bridgekit(key VARCHAR(255) PRIMARY KEY, value TEXT);",
    "BEGIN;",
    ...chunk(rows, 500).map((c) => `INSERT OR REPLACE INTO bridgekit(key, value) VALUES ${c.join(",")};`),
    "COMMIT;",
  ].join("\n");
  const r = spawnSync("sqlite3", [file], { input: sql, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0)
    throw new Error(
      `seeding ${file} with the sqlite3 command-line tool failed: ${r.error?.message ?? r.stderr} ` +
        `(the memory benchmark needs it: apt-get install sqlite3)`,
    );
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
