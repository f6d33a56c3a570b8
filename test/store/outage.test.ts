// What a Store does when PostgreSQL or Redis goes away. The decision: a connection killed
// while idle is replaced transparently (the next operation opens a new one); while the
// server is unreachable every operation rejects with a StoreError within
// operationTimeoutMs, never hangs and never crashes the process; once the server is back
// the same Store works again without being reopened.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { createRequire } from "node:module";
import { createServer, type Socket } from "node:net";
import { openStore, StoreError, type Store } from "../../src/store/index.js";
import { createClient } from "@keyv/redis";
import { BACKENDS, openTestStore, POSTGRES_URL, REDIS_URL, type Backend } from "./backends.js";
import { TcpProxy } from "./tcp-proxy.js";

const postgres = BACKENDS.find((b) => b.name === "postgres")!;
const redis = BACKENDS.find((b) => b.name === "redis")!;

/** Retries `op` until it resolves (at most ~10 s), for "works again after" checks. */
async function eventually<T>(op: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 100; i++) {
    try {
      return await op();
    } catch (err) {
      last = err;
      await sleep(100);
    }
  }
  throw last;
}

async function killPostgresConnections(store: Store): Promise<number> {
  // A plain pg client (the one @keyv/postgres uses), outside the Store under test.
  const req = createRequire(import.meta.resolve("@keyv/postgres"));
  const { Client } = req("pg") as {
    Client: new (c: { connectionString: string }) => {
      connect(): Promise<void>;
      query(sql: string, values: unknown[]): Promise<{ rows: Array<{ pg_terminate_backend: boolean }> }>;
      end(): Promise<void>;
    };
  };
  const client = new Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const { rows } = await client.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
      [`bridgekit:${store.prefix}`],
    );
    return rows.filter((r) => r.pg_terminate_backend).length;
  } finally {
    await client.end();
  }
}

async function killRedisConnections(store: Store): Promise<number> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  try {
    const list = await client.sendCommand<string>(["CLIENT", "LIST"]);
    const ids = list
      .split("\n")
      .filter((line) => line.includes(` name=bridgekit:${store.prefix} `))
      .map((line) => /\bid=(\d+)/.exec(line)![1]!);
    for (const id of ids) await client.sendCommand(["CLIENT", "KILL", "ID", id]);
    return ids.length;
  } finally {
    client.destroy();
  }
}

const kill: Record<string, (s: Store) => Promise<number>> = {
  postgres: killPostgresConnections,
  redis: killRedisConnections,
};

for (const backend of [postgres, redis] as Backend[]) {
  describe(`store outage: ${backend.name}`, () => {
    it("replaces a connection killed by the server, transparently", async () => {
      const store = await openTestStore(backend);
      try {
        const kv = store.namespace<number>("outage");
        await kv.set("before", 1);
        const killed = await kill[backend.name]!(store);
        assert.ok(killed >= 1, `killed ${killed} connections of this store`);
        await sleep(200); // let the client see the kill
        await kv.set("after", 2);
        assert.deepEqual(await kv.getMany(["before", "after"]), [1, 2]);
      } finally {
        await store.close();
      }
    });

    it("rejects operations with a StoreError while the server is unreachable, and recovers", async () => {
      const target = new URL(backend.url);
      const proxy = new TcpProxy(target.hostname, Number(target.port));
      await proxy.start();
      const store = await openTestStore(backend, {
        url: proxy.rewrite(backend.url),
        operationTimeoutMs: 1_000,
      });
      try {
        const kv = store.namespace<number>("outage");
        await kv.set("k", 1);
        await proxy.cut();
        const results = await Promise.allSettled([kv.get("k"), kv.set("k", 2), kv.has("k")]);
        for (const r of results) {
          assert.equal(r.status, "rejected");
          const err = r.reason as Error;
          assert.ok(err instanceof StoreError, `a StoreError, got ${String(err)}`);
          assert.match(err.message, new RegExp(`store ${backend.name}://`));
          assert.match(err.message, /outage:k/);
        }
        await proxy.restore();
        assert.equal(await eventually(() => kv.get("k")), 1);
        await kv.set("k", 3);
        assert.equal(await kv.get("k"), 3);
      } finally {
        await store.close();
        await proxy.cut();
      }
    });
  });
}

describe("store open failures", () => {
  for (const url of ["redis://127.0.0.1:1", "postgres://postgres:hunter2@127.0.0.1:1/test"]) {
    it(`fails fast with the masked URL for ${url.replace("hunter2", "***")}`, async () => {
      await assert.rejects(openStore(url, { connectTimeoutMs: 2_000 }), (err: Error) => {
        assert.ok(err instanceof StoreError);
        assert.match(
          err.message,
          /^store (redis|postgres):\/\/.*127\.0\.0\.1:1.*: cannot open: .*ECONNREFUSED/,
        );
        assert.doesNotMatch(err.message, /hunter2/);
        return true;
      });
    });
  }

  it("fails fast on a server that accepts but never answers (connect timeout)", async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => void sockets.push(s)).listen(0, "127.0.0.1");
    await new Promise((r) => silent.once("listening", r));
    const port = (silent.address() as { port: number }).port;
    try {
      for (const url of [`redis://127.0.0.1:${port}`, `postgres://postgres@127.0.0.1:${port}/test`]) {
        await assert.rejects(
          openStore(url, { connectTimeoutMs: 500, operationTimeoutMs: 500 }),
          (err: Error) => {
            assert.ok(err instanceof StoreError, String(err));
            assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}.*cannot open`));
            return true;
          },
        );
      }
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});
