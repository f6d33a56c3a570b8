// Standby takeover on PostgreSQL and Redis (issue 14): an active bridge process holds the
// store's writer lease while a standby (`lease.standby: true`, same config otherwise, same
// appservice port) waits for it without listening. Under load (a Synapse-like pusher keeps
// delivering transactions), the active process is SIGKILLed; its lease expires and the
// standby takes over: it listens, replays what the dead process recorded but did not handle,
// and answers the pusher's retries. Twice per backend (a new standby after the first
// takeover). Afterwards: nothing acknowledged lost, redelivered only in the kill window (the
// event in progress per room), in order per room; no standby handled anything before it took
// over. The figures: kill to the standby's ready, and kill to the first 200 it answered.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
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
import { dropPostgresPrefix, metric } from "./support/probes.js";

const POSTGRES_URL = process.env.BK_RELIABILITY_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.BK_RELIABILITY_REDIS ?? "redis://127.0.0.1:6379";

const TTL_MS = 2_000;
/** Takeovers per case: kill the active process, the standby takes over; then a new standby. */
const TAKEOVERS = 2;
/** How long each standby waits beside the active process before it is checked (ms). */
const STANDBY_WAIT_MS = 1_500;
/** Transactions acknowledged before each kill (since the start or the last takeover), and after the last. */
const BEFORE_KILL = 150;
const AFTER_LAST_TAKEOVER = 150;
const ROOMS = 4;

/**
 * Which of `pids` hold a socket listening on TCP `port` (Linux: /proc/net/tcp{,6} and the
 * processes' file descriptors); undefined where there is no /proc/net/tcp.
 */
function listeners(port: number, pids: number[]): number[] | undefined {
  if (!existsSync("/proc/net/tcp")) return undefined;
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; st 0A is LISTEN; the inode is the 10th column.
      if (cols.length > 9 && cols[1]!.endsWith(`:${hexPort}`) && cols[3] === "0A") inodes.add(cols[9]!);
    }
  }
  return pids.filter((pid) => {
    const dir = `/proc/${pid}/fd`;
    if (!existsSync(dir)) return false;
    return readdirSync(dir).some((fd) => {
      try {
        const link = readlinkSync(join(dir, fd));
        return link.startsWith("socket:[") && inodes.has(link.slice(8, -1));
      } catch {
        return false; // closed meanwhile
      }
    });
  });
}

interface Takeover {
  /** Kill to the standby's ready message, and to the first 200 answered to an attempt sent after the kill. */
  readyMs: number;
  firstOkMs: number;
  /** Transactions acknowledged when the kill landed, and items the inbox held then. */
  pushedAtKill: number;
  pendingAtKill: number;
}

async function takeoverRounds(
  t: TestContext,
  run: { label: string; store: string; storePrefix: string },
): Promise<Takeover[]> {
  const random = seededRandom();
  const rooms = Array.from({ length: ROOMS }, (_, i) => `room${i}`);
  const world = await crashWorld({
    label: run.label,
    store: run.store,
    storePrefix: run.storePrefix,
    lease: { ttlMs: TTL_MS },
    adapter: { rooms },
  });
  // One record file per process: a standby's adapter writes its B line when the child starts,
  // long before it takes over; the analysis reads the files in lifetime order.
  const recordPaths = Array.from({ length: TAKEOVERS + 1 }, (_, i) =>
    join(world.files.dir, `records-${i}.log`),
  );
  const children: ChildBridge[] = [];
  let active: ChildBridge | undefined;
  let stopPushing = false;
  try {
    active = await world.spawn({ recordPath: recordPaths[0]! });
    children.push(active);
    await active.waitReady(); // the first process makes the portals; only then is there traffic
    const plan = matrixPlan({
      label: `${run.label}-${random.seed}`,
      roomIds: rooms.map((r) => world.roomId(r)),
      transactions: 20_000, // more than is ever pushed: the push stops after the last takeover
      maxEventsPerTxn: 10,
      random,
      domain: DOMAIN,
    });
    const oks: Array<{ sentAt: number; answeredAt: number }> = []; // the attempts answered 200
    const pusher = new TransactionPusher({
      baseUrl: world.baseUrl,
      hsToken: world.files.registration.hs_token,
      deadline: Date.now() + 120_000,
      onAttempt: (a) => {
        if (a.status === 200) oks.push(a);
      },
    });
    let pushed = 0;
    let pushDone = false;
    const pushing = (async () => {
      for (const txn of plan.transactions) {
        if (stopPushing) return;
        await pusher.push(txn.txnId, { events: txn.events });
        pushed++;
      }
    })().finally(() => {
      pushDone = true;
    });

    const takeovers: Takeover[] = [];
    try {
      for (let round = 1; round <= TAKEOVERS; round++) {
        const killAfter = (round === 1 ? 0 : pushed) + BEFORE_KILL;
        const standby = await world.spawnStandby({ recordPath: recordPaths[round]! });
        children.push(standby);
        await sleep(STANDBY_WAIT_MS);
        // The standby waits for the lease: alive, not ready, not listening, handling nothing;
        // the port is the active process's.
        assert.ok(standby.running, `standby ${round} exited while it should wait:\n${standby.stderrTail()}`);
        assert.equal(standby.readyAt, undefined, `standby ${round} reported ready while the active one runs`);
        const health = await fetch(`${world.baseUrl}/health`);
        assert.equal(health.status, 200, "the active process answers /health");
        const holders = listeners(world.files.port, [active.pid!, standby.pid!]);
        if (holders !== undefined)
          assert.deepEqual(holders, [active.pid], "only the active process listens on the appservice port");
        // Under load: the push goes on, and part of it was acknowledged by the active process.
        while (pushed < killAfter && !pushDone) await sleep(5);
        assert.equal(pushDone, false, "the push ended before the kill");
        assert.deepEqual(
          readRecords(recordPaths[round]!).map((l) => l.split(" ")[0]),
          ["B"],
          `standby ${round} handled events before the kill`,
        );
        const pendingAtKill = await metric(world.baseUrl, "bridgekit_inbox_pending_items");
        const pushedAtKill = pushed;
        const killedAt = performance.now();
        await active.kill();
        active = standby;
        await standby.waitReady(3 * TTL_MS + 10_000); // the bound is asserted below, with the figure
        const readyMs = standby.readyAt! - killedAt;
        const answered = () => oks.find((a) => a.sentAt > killedAt)?.answeredAt;
        const until = performance.now() + 10_000;
        while (answered() === undefined && performance.now() < until) await sleep(5);
        const firstOk = answered();
        assert.ok(firstOk !== undefined, `no 200 within 10 s of standby ${round}'s ready`);
        takeovers.push({ readyMs, firstOkMs: firstOk - killedAt, pushedAtKill, pendingAtKill });
        const after = listeners(world.files.port, [standby.pid!]);
        if (after !== undefined)
          assert.deepEqual(after, [standby.pid], "the standby listens once it took over");
      }
      const target = pushed + AFTER_LAST_TAKEOVER;
      while (pushed < target && !pushDone) await sleep(5);
      assert.equal(pushDone, false, "the plan ran out: make it longer");
    } finally {
      stopPushing = true;
      await pushing.catch(() => undefined); // its own failure is reported below
    }
    await pushing;
    // Acknowledged means recorded: wait until the last process handled everything.
    await active.drain();
    const pendingAtEnd = await metric(world.baseUrl, "bridgekit_inbox_pending_items");
    await active.stop();

    // The lifetimes in order: each standby began to handle only after its predecessor's kill.
    const lines = recordPaths.flatMap((path, i) => [...readRecords(path), i < TAKEOVERS ? "K" : "X"]);
    const transactions = plan.transactions.slice(0, pushed);
    const events = plan.events.slice(
      0,
      transactions.reduce((n, txn) => n + txn.events.length, 0),
    );
    const report = analyseDeliveries(lines, events);
    const figures = takeovers
      .map(
        (x, i) =>
          `#${i + 1} after ${x.pushedAtKill} transactions (${x.pendingAtKill} items pending): ready ${Math.round(x.readyMs)} ms, ` +
          `first 200 ${Math.round(x.firstOkMs)} ms`,
      )
      .join("; ");
    t.diagnostic(
      `${run.label}: seed ${random.seed}; lease ttl ${TTL_MS} ms; takeovers ${figures}; ` +
        `${report.events} events in ${pushed} transactions over ${ROOMS} rooms; processes ${report.lifetimes}; ` +
        `pushes ${pusher.attempts} (${pusher.failures} retried); deliveries ${report.deliveries}; ` +
        `lost ${report.lost.length}; duplicated ${report.duplicates} (${report.explainedDuplicates} in the kill window); ` +
        `order violations ${report.orderViolations.length}`,
    );
    assert.equal(report.lifetimes, TAKEOVERS + 1, "one lifetime per process");
    assert.equal(report.kills, TAKEOVERS);
    assert.deepEqual(report.unknown, [], "deliveries of events never pushed");
    assert.deepEqual(report.lost.slice(0, 20), [], `${report.lost.length} events never handled`);
    assert.deepEqual(report.deadLettered, [], "no event failed for good");
    assert.deepEqual(report.unexplainedDuplicates.slice(0, 20), [], "duplicates outside the kill window");
    assert.deepEqual(report.orderViolations.slice(0, 20), [], "per-room order");
    assert.ok(report.duplicates <= TAKEOVERS * ROOMS, "at most one redelivery per room per kill");
    assert.equal(pendingAtEnd, 0, "drained: nothing pending");
    // Every process handled something: the first before its kill, each standby after its takeover.
    for (const [i, path] of recordPaths.entries())
      assert.ok(
        readRecords(path).some((l) => l.startsWith("D ")),
        `process ${i} handled nothing`,
      );
    for (const [i, x] of takeovers.entries()) {
      assert.ok(
        x.readyMs < 3 * TTL_MS,
        `takeover ${i + 1}: ready ${Math.round(x.readyMs)} ms after the kill`,
      );
      assert.ok(
        x.firstOkMs < 3 * TTL_MS,
        `takeover ${i + 1}: first 200 ${Math.round(x.firstOkMs)} ms after the kill`,
      );
    }
    return takeovers;
  } catch (err) {
    for (const [i, child] of children.entries())
      t.diagnostic(`bridge child ${i} (pid ${child.pid}) stderr:\n${child.stderrTail()}`);
    throw err;
  } finally {
    stopPushing = true;
    for (const child of children) await child.kill();
    await world.close();
  }
}

/** Deletes this run's keys (store, lease, lease token) from the shared Redis. */
async function dropRedisPrefix(prefix: string): Promise<void> {
  const { createClient } = await import("@keyv/redis");
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  try {
    const keys: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) keys.push(...batch);
    for (let i = 0; i < keys.length; i += 500) await client.del(keys.slice(i, i + 500));
  } finally {
    await client.quit();
  }
}

/** Opens the store once, so an unreachable server fails with what to do. */
async function probe(url: string, prefix: string): Promise<void> {
  const store = await openStore(url, { prefix, connectTimeoutMs: 3000 }).catch((err: unknown) => {
    throw new Error(`${url} is needed (run scripts/services/ensure-services.sh): ${(err as Error).message}`);
  });
  await store.close();
}

describe("standby takeover: SIGKILL the active process under load", { timeout: 180_000 }, () => {
  it("postgres store: the standby takes over within 3 ttl, nothing lost, redelivered only in the kill window", async (t) => {
    const prefix = `reltk${Date.now().toString(36)}`;
    await probe(POSTGRES_URL, prefix);
    try {
      await takeoverRounds(t, { label: "postgres", store: POSTGRES_URL, storePrefix: prefix });
    } finally {
      await dropPostgresPrefix(POSTGRES_URL, prefix);
    }
  });

  it("redis store: the same", async (t) => {
    const prefix = `reltk${Date.now().toString(36)}`;
    await probe(REDIS_URL, prefix);
    try {
      await takeoverRounds(t, { label: "redis", store: REDIS_URL, storePrefix: prefix });
    } finally {
      await dropRedisPrefix(prefix);
    }
  });
});
