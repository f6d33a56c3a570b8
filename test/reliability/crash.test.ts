// Matrix -> adapter under SIGKILL: a bridge child is killed at random moments (while it
// handles transactions, and sometimes while it starts) as a Synapse-like pusher keeps
// delivering transactions; every restart uses the same store. Afterwards every event was
// handled, in order per room, and delivered again only in the one window the framework
// cannot close (killed after the adapter's handler ran, before the journal recorded it).
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { openStore } from "../../src/store/index.js";
import { analyseDeliveries } from "./support/analysis.js";
import type { ChildBridge } from "./support/child-bridge.js";
import { crashWorld } from "./support/crash-world.js";
import { DOMAIN } from "./support/bridge-files.js";
import { TransactionPusher } from "./support/hs-simulator.js";
import { matrixPlan } from "./support/matrix-plan.js";
import { seededRandom, sleep } from "./support/random.js";
import { readRecords } from "./support/record-file.js";

const POSTGRES_URL = process.env.BK_RELIABILITY_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";

interface CrashRun {
  label: string;
  store: string;
  storePrefix?: string;
  kills: number;
  transactions: number;
  rooms: number;
}

async function crashRounds(t: TestContext, run: CrashRun): Promise<void> {
  const random = seededRandom();
  const rooms = Array.from({ length: run.rooms }, (_, i) => `room${i}`);
  const world = await crashWorld({
    label: run.label,
    store: run.store,
    ...(run.storePrefix !== undefined ? { storePrefix: run.storePrefix } : {}),
    adapter: { rooms },
  });
  let child: ChildBridge | undefined;
  try {
    child = await world.spawn();
    await child.waitReady(); // the first process makes the portals; only then is there traffic
    const plan = matrixPlan({
      label: `${run.label}-${random.seed}`,
      roomIds: rooms.map((r) => world.roomId(r)),
      transactions: run.transactions,
      maxEventsPerTxn: 10,
      random,
      domain: DOMAIN,
    });
    const pusher = new TransactionPusher({
      baseUrl: world.baseUrl,
      hsToken: world.files.registration.hs_token,
      deadline: Date.now() + 240_000,
    });
    let pushed = 0;
    let pushDone = false;
    const pushing = (async () => {
      for (const txn of plan.transactions) {
        await pusher.push(txn.txnId, { events: txn.events });
        pushed++;
      }
    })().finally(() => {
      pushDone = true;
    });

    let kills = 0;
    let startupKills = 0;
    try {
      while (kills < run.kills && !pushDone) {
        if (kills > 0 && random.next() < 0.2) {
          await sleep(random.int(0, 600)); // somewhere in start-up (or just after)
          startupKills++;
        } else {
          // Spaced by progress, not time: how fast transactions go through depends on the
          // machine and the store, and the kills must spread over the whole plan.
          await child.waitReady();
          const target = pushed + random.int(1, Math.floor((2 * run.transactions) / run.kills));
          while (pushed < target && !pushDone) await sleep(random.int(1, 10));
          await sleep(random.int(0, 5)); // and anywhere within the next transaction
        }
        await child.kill();
        world.marks.append("K");
        kills++;
        child = await world.spawn();
      }
      await child.waitReady();
    } finally {
      await pushing.catch(() => undefined); // its own failure is reported below
    }
    await pushing;
    await child.stop();
    world.marks.append("X");

    // A fresh process on the same store: the old transactions are committed, their replay is
    // a no-op (200 at once, nothing delivered).
    const before = readRecords(world.recordPath).length;
    child = await world.spawn();
    await child.waitReady();
    const replay = new TransactionPusher({
      baseUrl: world.baseUrl,
      hsToken: world.files.registration.hs_token,
      deadline: Date.now() + 30_000,
    });
    const replayed = plan.transactions.slice(-25);
    for (const txn of replayed) assert.equal(await replay.push(txn.txnId, { events: txn.events }), 1);
    await child.stop();
    world.marks.append("X");
    const lines = readRecords(world.recordPath);
    const afterReplay = lines.slice(before).filter((l) => l.startsWith("S ") || l.startsWith("D "));

    const report = analyseDeliveries(lines, plan.events);
    t.diagnostic(
      `${run.label}: seed ${random.seed}; ${report.events} events in ${pushed} transactions over ${run.rooms} rooms; ` +
        `kills survived ${kills} (${startupKills} during start-up); processes ${report.lifetimes}; ` +
        `pushes ${pusher.attempts} (${pusher.failures} retried); deliveries ${report.deliveries}; ` +
        `lost ${report.lost.length}; duplicated ${report.duplicates} (all ${report.explainedDuplicates} explained: ` +
        `killed between the handler and the journal write); unexplained ${report.unexplainedDuplicates.length}; ` +
        `order violations ${report.orderViolations.length}; replayed ${replayed.length} committed transactions: ` +
        `${afterReplay.length} deliveries`,
    );
    assert.equal(pushed, plan.transactions.length, "every transaction was acknowledged");
    assert.ok(kills >= Math.min(run.kills, 10), `only ${kills} kills happened; the plan ran out too early`);
    assert.deepEqual(report.unknown, [], "deliveries of events never pushed");
    assert.deepEqual(report.lost.slice(0, 20), [], `${report.lost.length} events never handled`);
    assert.deepEqual(report.unexplainedDuplicates.slice(0, 20), [], "duplicates outside the kill window");
    assert.deepEqual(report.orderViolations.slice(0, 20), [], "per-room order");
    assert.equal(report.explainedDuplicates, report.duplicates);
    assert.ok(report.duplicates <= kills * run.rooms, "at most one redelivery per room per kill");
    assert.deepEqual(afterReplay, [], "a replayed committed transaction delivered nothing");
  } catch (err) {
    if (child) t.diagnostic(`last bridge child stderr:\n${child.stderrTail()}`);
    throw err;
  } finally {
    await child?.kill();
    await world.close();
  }
}

/** Deletes this run's rows from the shared test database (the Store API has no "drop all"). */
async function dropPrefix(prefix: string): Promise<void> {
  // pg comes with @keyv/postgres; it ships no types, so only what is used here is typed.
  const pgModule = "pg";
  const { default: pg } = (await import(pgModule)) as {
    default: {
      Client: new (o: { connectionString: string }) => {
        connect(): Promise<void>;
        query(sql: string, values: unknown[]): Promise<unknown>;
        end(): Promise<void>;
      };
    };
  };
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query("DELETE FROM bridgekit WHERE key LIKE $1", [`${prefix}:%`]);
  } finally {
    await client.end();
  }
}

describe("crash: SIGKILL while the homeserver pushes transactions", { timeout: 300_000 }, () => {
  it("sqlite store: many kills, no event lost, none redelivered outside the kill window", async (t) => {
    await crashRounds(t, {
      label: "sqlite",
      store: "sqlite://bridge.db",
      kills: 40,
      transactions: 1500,
      rooms: 6,
    });
  });

  it("postgres store: the same guarantees", async (t) => {
    const prefix = `rel${Date.now().toString(36)}`;
    const probe = await openStore(POSTGRES_URL, { prefix, connectTimeoutMs: 3000 }).catch((err: unknown) => {
      throw new Error(
        `PostgreSQL is needed at ${POSTGRES_URL} (run scripts/services/ensure-services.sh): ${(err as Error).message}`,
      );
    });
    await probe.close();
    try {
      await crashRounds(t, {
        label: "postgres",
        store: POSTGRES_URL,
        storePrefix: prefix,
        kills: 12,
        transactions: 200,
        rooms: 4,
      });
    } finally {
      await dropPrefix(prefix);
    }
  });
});
