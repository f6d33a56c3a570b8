// Matrix -> adapter under SIGKILL: a bridge child is killed at random moments (while it
// records transactions, while it handles what it recorded, and sometimes while it starts) as
// a Synapse-like pusher keeps delivering transactions; every restart uses the same store.
// A 200 means "recorded" (the inbox), not "handled": so the test drains the bridge (every
// recorded event handled or dead-lettered) before it looks. Afterwards every event was
// handled, in order per room, and delivered again only in the one window the framework
// cannot close (killed after the adapter's handler ran, before the inbox recorded it as
// handled: the event in progress in its room). The second group adds what the inbox adds:
// events retried with backoff, dead letters, and a full inbox answering 503.
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { DeadLetters } from "../../src/inbox/dead-letters.js";
import { openStore } from "../../src/store/index.js";
import { analyseDeliveries, type DeliveryReport, type PlannedEvent } from "./support/analysis.js";
import type { ChildBridge } from "./support/child-bridge.js";
import { crashWorld, type CrashWorld } from "./support/crash-world.js";
import { DOMAIN } from "./support/bridge-files.js";
import { TransactionPusher } from "./support/hs-simulator.js";
import { matrixPlan } from "./support/matrix-plan.js";
import { seededRandom, sleep } from "./support/random.js";
import { readRecords, RecordTail } from "./support/record-file.js";
import { failsOn, PERMANENT_MESSAGE, type RecordingAdapterOptions } from "./support/recording-adapter.js";
import { dropPostgresPrefix, metric } from "./support/probes.js";

const POSTGRES_URL = process.env.BK_RELIABILITY_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";

interface CrashRun {
  label: string;
  store: string;
  storePrefix?: string;
  kills: number;
  transactions: number;
  rooms: number;
  /** More of the config's `inbox` section. */
  inbox?: Record<string, unknown>;
  adapter?: Pick<RecordingAdapterOptions, "handlerMs" | "failures">;
  /** The pusher's retry backoff (ms; default 10-50). */
  backoff?: [number, number];
  /**
   * Some kills aimed at a moment: "retry" right after an event failed with a RetryableError
   * (within `aimMs`, shorter than the first backoff: while its retry waits); "full" while
   * the bridge answers 503 (the inbox is full).
   */
  aim?: { at: "retry" | "full"; aimMs: number };
  /** More checks once every process is gone; returns more figures for the diagnostic. */
  after?: (c: {
    world: CrashWorld;
    report: DeliveryReport;
    events: PlannedEvent[];
    kills: number;
  }) => Promise<string>;
}

async function crashRounds(t: TestContext, run: CrashRun): Promise<void> {
  const random = seededRandom();
  const rooms = Array.from({ length: run.rooms }, (_, i) => `room${i}`);
  const world = await crashWorld({
    label: run.label,
    store: run.store,
    ...(run.storePrefix !== undefined ? { storePrefix: run.storePrefix } : {}),
    ...(run.inbox !== undefined ? { inbox: run.inbox } : {}),
    adapter: { rooms, ...run.adapter },
  });
  let child: ChildBridge | undefined;
  let sampling = false; // the /metrics sampler below runs while this is true
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
      ...(run.backoff ? { minBackoffMs: run.backoff[0], maxBackoffMs: run.backoff[1] } : {}),
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

    // The child's progress, from its record file: handler tries that ended (handled or
    // failed for good), the events over, and retryable failures.
    const tail = new RecordTail(world.recordPath);
    let ended = 0;
    let retryable = 0;
    const over = new Set<string>();
    const poll = () => {
      for (const line of tail.read()) {
        if (line.startsWith("D ") || line.startsWith("P ")) {
          ended++;
          over.add(line.slice(2));
        } else if (line.startsWith("R ")) retryable++;
      }
    };
    const finished = () => {
      poll();
      return pushDone && over.size >= plan.events.length;
    };
    // The most items pending in the inbox, sampled from /metrics while it runs.
    let maxPending = 0;
    sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const pending = await metric(world.baseUrl, "bridgekit_inbox_pending_items").catch(() => 0);
        maxPending = Math.max(maxPending, pending);
        await sleep(50);
      }
    })();

    let kills = 0;
    let startupKills = 0;
    let aimedKills = 0;
    let killsWhileFull = 0;
    try {
      while (kills < run.kills && !finished()) {
        const roll = random.next();
        if (kills > 0 && roll < 0.2) {
          await sleep(random.int(0, 600)); // somewhere in start-up (or just after)
          startupKills++;
        } else {
          await child.waitReady();
          if (run.aim && roll < 0.6) {
            // Wait (at most 3 s) for the moment aimed at, then kill within aimMs.
            const until = Date.now() + 3_000;
            poll();
            const seen = retryable;
            const hit = () =>
              run.aim!.at === "retry" ? (poll(), retryable > seen) : pusher.last?.status === 503;
            while (!hit() && !finished() && Date.now() < until) await sleep(random.int(1, 5));
            if (hit()) aimedKills++;
            await sleep(random.int(0, run.aim.aimMs));
          } else if (!pushDone && random.next() < 0.5) {
            // Spaced by progress, not time: how fast transactions go through depends on the
            // machine and the store, and the kills must spread over the whole plan: half by
            // transactions recorded (acknowledged), half by events handled.
            const target = pushed + random.int(1, Math.floor((2 * run.transactions) / run.kills));
            while (pushed < target && !pushDone) await sleep(random.int(1, 10));
            await sleep(random.int(0, 5)); // and anywhere within the next transaction
          } else {
            // (Denser than by transactions: events are handled while transactions are
            // pushed too, so this scale alone would run out before `kills`.)
            const target = ended + random.int(1, Math.floor((1.5 * plan.events.length) / run.kills));
            while (ended < target && !finished()) await sleep(random.int(1, 10));
          }
        }
        if (pusher.last?.status === 503) killsWhileFull++;
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
    // Acknowledged means recorded: wait until the last process handled everything.
    await child.drain();
    sampling = false;
    await sampler;
    const pendingAtEnd = await metric(world.baseUrl, "bridgekit_inbox_pending_items");
    const waitingAtEnd = await metric(world.baseUrl, "bridgekit_inbox_rooms_waiting_retry");
    await child.stop();
    world.marks.append("X");

    // A fresh process on the same store: nothing is left to resume, and the old transactions
    // are recorded, so their replay is a no-op (200 at once, nothing delivered).
    const before = readRecords(world.recordPath).length;
    child = await world.spawn();
    await child.waitReady();
    const pendingAtRestart = await metric(world.baseUrl, "bridgekit_inbox_pending_items");
    const replay = new TransactionPusher({
      baseUrl: world.baseUrl,
      hsToken: world.files.registration.hs_token,
      deadline: Date.now() + 30_000,
    });
    const replayed = plan.transactions.slice(-25);
    for (const txn of replayed) assert.equal(await replay.push(txn.txnId, { events: txn.events }), 1);
    await child.drain();
    await child.stop();
    world.marks.append("X");
    const lines = readRecords(world.recordPath);
    const afterReplay = lines.slice(before).filter((l) => /^[SDRP] /.test(l));

    const report = analyseDeliveries(lines, plan.events);
    const more = run.after ? await run.after({ world, report, events: plan.events, kills }) : "";
    // What each kind of run is about; the zeros of the others are left out.
    const killKinds = [`${startupKills} during start-up`];
    if (run.aim)
      killKinds.push(`${aimedKills} aimed at ${run.aim.at === "retry" ? "a retry wait" : "a 503"}`);
    if (report.retryableFailures > 0)
      killKinds.push(`${report.killsWhileRetrying} while a room waited to retry`);
    if (report.deadLettered.length > 0)
      killKinds.push(`${report.killsWithDeadLetters} with dead letters stored`);
    if (pusher.statuses.has(503)) killKinds.push(`${killsWhileFull} right after a 503`);
    const tries =
      report.retryableFailures > 0 ? ` (${report.retryableFailures} retryable failures, each retried)` : "";
    t.diagnostic(
      `${run.label}: seed ${random.seed}; ${report.events} events in ${pushed} transactions over ${run.rooms} rooms; ` +
        `kills survived ${kills} (${killKinds.join(", ")}); processes ${report.lifetimes}; ` +
        `pushes ${pusher.attempts} (${pusher.failures} retried, ${pusher.statuses.get(503) ?? 0} of them 503 inbox full); ` +
        `most items pending ${maxPending}; deliveries ${report.deliveries}${tries}; ` +
        `dead-lettered ${report.deadLettered.length}; lost ${report.lost.length}; ` +
        `duplicated ${report.duplicates} (all ${report.explainedDuplicates} explained: killed between the handler and ` +
        `the inbox's handled mark); unexplained ${report.unexplainedDuplicates.length}; order violations ` +
        `${report.orderViolations.length}; replayed ${replayed.length} recorded transactions: ${afterReplay.length} deliveries` +
        more,
    );
    assert.equal(pushed, plan.transactions.length, "every transaction was acknowledged");
    assert.ok(kills >= Math.min(run.kills, 10), `only ${kills} kills happened; the plan ran out too early`);
    assert.deepEqual(report.unknown, [], "deliveries of events never pushed");
    assert.deepEqual(report.lost.slice(0, 20), [], `${report.lost.length} events never handled`);
    assert.deepEqual(report.handledAndDead, [], "events both handled and dead-lettered");
    assert.deepEqual(report.unexplainedDuplicates.slice(0, 20), [], "duplicates outside the kill window");
    assert.deepEqual(report.orderViolations.slice(0, 20), [], "per-room order");
    assert.equal(report.explainedDuplicates, report.duplicates);
    assert.ok(report.duplicates <= kills * run.rooms, "at most one redelivery per room per kill");
    assert.deepEqual([pendingAtEnd, waitingAtEnd, pendingAtRestart], [0, 0, 0], "drained: nothing pending");
    assert.deepEqual(afterReplay, [], "a replayed recorded transaction delivered nothing");
    const bound = run.inbox?.maxPendingItems;
    if (typeof bound === "number") {
      // Backpressure: the homeserver kept the backlog (503, retried), the inbox stayed bounded.
      assert.ok((pusher.statuses.get(503) ?? 0) > 0, "the full inbox answered 503");
      assert.match(pusher.lastRefusal?.text ?? "", /M_LIMIT_EXCEEDED/);
      assert.equal(pusher.lastRefusal?.retryAfter, "5");
      assert.ok(maxPending <= bound, `${maxPending} items pending, over inbox.maxPendingItems ${bound}`);
      assert.ok(killsWhileFull >= 1, "no kill landed while the inbox was refusing transactions");
    }
    const failures = run.adapter?.failures;
    const picked = plan.events.filter((e) => failures !== undefined && failsOn(e.eventId, failures.every));
    if (failures?.kind === "permanent") {
      assert.deepEqual(
        report.deadLettered,
        picked.map((e) => e.eventId),
        "exactly the refused events failed for good",
      );
    } else {
      assert.deepEqual(report.deadLettered, [], "no event failed for good");
    }
    if (failures?.kind === "retryable") {
      // Each picked event failed exactly `times` tries (counted over every process), then
      // was handled: not lost, not given up on.
      assert.equal(report.retryableFailures, picked.length * failures.times, "retryable failures");
      assert.ok(report.retries > 0, "events were retried");
      assert.ok(
        report.killsWhileRetrying >= 3,
        `only ${report.killsWhileRetrying} kills while a retry waited`,
      );
    }
  } catch (err) {
    if (child) t.diagnostic(`last bridge child stderr:\n${child.stderrTail()}`);
    throw err;
  } finally {
    sampling = false;
    await child?.kill();
    await world.close();
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
      await dropPostgresPrefix(POSTGRES_URL, prefix);
    }
  });
});

/** The dead letters in a stopped bridge's sqlite store. */
async function storedDeadLetters(world: CrashWorld) {
  const store = await openStore("sqlite://bridge.db", { baseDir: world.files.dir });
  try {
    return await new DeadLetters(store).list();
  } finally {
    await store.close();
  }
}

describe(
  "crash: SIGKILL with the inbox under strain (retries, dead letters, full)",
  { timeout: 300_000 },
  () => {
    it("killed while an event waits for its retry: still handled after the restart, once outside the window", async (t) => {
      await crashRounds(t, {
        label: "retry",
        store: "sqlite://bridge.db",
        kills: 20,
        transactions: 250,
        rooms: 4,
        // Events picked by failsOn(id, 12) fail twice (over all processes) with a
        // RetryableError, then succeed; the retry waits 100 ms, then 200 ms.
        adapter: { failures: { kind: "retryable", every: 12, times: 2 } },
        inbox: { retry: { firstDelayMs: 100, maxDelayMs: 400, maxAttempts: 50, maxAgeMs: 600_000 } },
        aim: { at: "retry", aimMs: 60 },
        after: async ({ world }) => {
          const letters = await storedDeadLetters(world);
          assert.deepEqual(
            letters.map((l) => l.id),
            [],
            "no dead letters: every retried event was handled",
          );
          return "; dead letters in the store 0";
        },
      });
    });

    it("killed with dead letters stored: each is still there once, and was never handled", async (t) => {
      await crashRounds(t, {
        label: "dead",
        store: "sqlite://bridge.db",
        kills: 20,
        transactions: 400,
        rooms: 4,
        // Events picked by failsOn(id, 10) always fail with a PermanentError.
        adapter: { failures: { kind: "permanent", every: 10 } },
        after: async ({ world, report }) => {
          const letters = await storedDeadLetters(world);
          const ids = letters.map((l) => l.id);
          assert.equal(new Set(ids).size, ids.length, "a dead letter stored twice");
          assert.deepEqual([...ids].sort(), [...report.deadLettered].sort(), "the dead letters in the store");
          for (const l of letters) {
            assert.equal(l.reason, "permanent", l.id);
            assert.equal(l.userMessage, PERMANENT_MESSAGE, l.id);
            assert.equal(l.item.kind === "event" && l.item.event.event_id, l.id, l.id);
          }
          // Best effort (not awaited by the lane, so a kill may lose one): only dead letters
          // are ever announced.
          const notices = [...world.hs.rooms.values()].flatMap((room) =>
            room.timeline.flatMap((e) => {
              const body = e.content.body;
              const to = (
                e.content["m.relates_to"] as { "m.in_reply_to"?: { event_id?: string } } | undefined
              )?.["m.in_reply_to"]?.event_id;
              return typeof body === "string" && body.startsWith("not bridged: ") ? [to ?? "?"] : [];
            }),
          );
          const dead = new Set(ids);
          assert.deepEqual(
            notices.filter((id) => !dead.has(id)),
            [],
            "notices for events that are not dead letters",
          );
          assert.ok(
            report.killsWithDeadLetters >= 3,
            `only ${report.killsWithDeadLetters} kills with dead letters stored`,
          );
          return `; dead letters in the store ${ids.length}, each once; "not bridged" notices ${notices.length} (${new Set(notices).size} events)`;
        },
      });
    });

    it("killed while the inbox is full: the homeserver gets 503s and keeps the backlog, nothing acknowledged is lost", async (t) => {
      await crashRounds(t, {
        label: "full",
        store: "sqlite://bridge.db",
        kills: 20,
        transactions: 400,
        rooms: 4,
        adapter: { handlerMs: 3 }, // a slow remote network: the inbox fills up
        inbox: { maxPendingItems: 40 },
        backoff: [20, 100],
        aim: { at: "full", aimMs: 20 },
      });
    });
  },
);
