/**
 * Store backends for bridgekit benchmark runs: a fresh sqlite file, or PostgreSQL / Redis
 * under a unique store prefix (removed afterwards with psql / redis-cli when they exist).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

export type BackendName = "sqlite" | "sqlite-wal" | "postgres" | "redis";

export interface Backend {
  name: BackendName;
  url: string;
  prefix: string;
  /** Removes what the run wrote (the sqlite folder, or the prefix's keys). Never throws. */
  cleanup(): void;
}

let counter = 0;

/**
 * A fresh backend. "sqlite-wal" is a what-if, not a bridgekit default: the same sqlite store
 * with the file switched to WAL journaling before the bridge opens it (needs the sqlite3
 * command-line tool; returns undefined without it).
 */
export function freshBackend(name: BackendName): Backend | undefined {
  const prefix = `bench${process.pid}x${Date.now().toString(36)}x${++counter}`;
  if (name === "sqlite" || name === "sqlite-wal") {
    const dir = mkdtempSync(join(tmpdir(), "bridgekit-bench-"));
    const file = join(dir, "bench.db");
    if (name === "sqlite-wal") {
      const r = spawnSync("sqlite3", [file, "PRAGMA journal_mode=WAL;"], { encoding: "utf8" });
      if (r.status !== 0) {
        rmSync(dir, { recursive: true, force: true });
        return undefined;
      }
    }
    return {
      name,
      url: `sqlite://${file}`,
      prefix,
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  if (name === "postgres") {
    return {
      name,
      url: POSTGRES_URL,
      prefix,
      cleanup: () =>
        void spawnSync("psql", [POSTGRES_URL, "-qc", `DELETE FROM bridgekit WHERE key LIKE '${prefix}:%'`], {
          stdio: "ignore",
        }),
    };
  }
  return {
    name,
    url: REDIS_URL,
    prefix,
    cleanup: () => {
      const host = new URL(REDIS_URL);
      const args = ["-h", host.hostname, "-p", host.port || "6379"];
      const keys = spawnSync("redis-cli", [...args, "--scan", "--pattern", `*${prefix}:*`], {
        encoding: "utf8",
        maxBuffer: 256 * 1024 * 1024,
      });
      const list = (keys.stdout ?? "").split("\n").filter(Boolean);
      for (let i = 0; i < list.length; i += 1000)
        spawnSync("redis-cli", [...args, "del", ...list.slice(i, i + 1000)], { stdio: "ignore" });
    },
  };
}
