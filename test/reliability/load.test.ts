// Sustained mixed load on a bridge child for a bounded time, with its memory sampled every
// second after a forced GC: transactions (messages, state, member joins, typing and
// receipts), remote -> Matrix sends through the outbox, and user and alias queries. After a
// warm-up third, heap and RSS must stay flat: the mean of the last 5 samples may exceed the
// mean of the first 5 after warm-up by at most 20%.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { describe, it } from "node:test";
import { writeBridgeFilesWithFakeHomeserver, DOMAIN } from "./support/bridge-files.js";
import { ChildBridge } from "./support/child-bridge.js";
import type { MemorySample } from "./support/child-protocol.js";
import { TransactionPusher } from "./support/hs-simulator.js";
import { matrixPlan } from "./support/matrix-plan.js";
import { seededRandom, sleep } from "./support/random.js";

const DURATION_MS = Number(process.env.BK_RELIABILITY_LOAD_MS ?? 60_000);
const ROOMS = ["room0", "room1", "room2", "room3", "room4", "room5"];
const GROWTH_BOUND = 0.2;

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

describe("load", { timeout: DURATION_MS + 120_000 }, () => {
  it(`mixed load for ${DURATION_MS / 1000} s: memory stays flat after warm-up`, async (t) => {
    const random = seededRandom();
    const { files, hs } = await writeBridgeFilesWithFakeHomeserver({
      label: "load",
      store: "sqlite://bridge.db",
    });
    const base = `http://127.0.0.1:${files.port}`;
    const auth = { Authorization: `Bearer ${files.registration.hs_token}` };
    const child = await ChildBridge.spawn(
      {
        configPath: files.configPath,
        adapter: {
          kind: "load",
          rooms: ROOMS,
          sendsPerTick: 4,
          sendEveryMs: 50,
          senders: ["ann", "ben", "cat"],
        },
      },
      { gc: true },
    );
    const samples: Array<MemorySample & { at: number }> = [];
    let stop = false;
    let txns = 0;
    let events = 0;
    let queries = 0;
    try {
      await child.waitReady();
      const roomIds = ROOMS.map((r) => hs.aliases.get(`#rel_${r}:${DOMAIN}`)!);
      const pusher = new TransactionPusher({
        baseUrl: base,
        hsToken: files.registration.hs_token,
        deadline: Date.now() + DURATION_MS + 60_000,
      });
      const pushing = (async () => {
        for (let round = 0; !stop; round++) {
          const plan = matrixPlan({
            label: `load${round}`,
            roomIds,
            transactions: 50,
            maxEventsPerTxn: 10,
            random,
            domain: DOMAIN,
          });
          for (const txn of plan.transactions) {
            if (stop) return;
            const room = roomIds[txns % roomIds.length]!;
            const ephemeral = [
              { type: "m.typing", room_id: room, content: { user_ids: [`@alice:${DOMAIN}`] } },
              {
                type: "m.receipt",
                room_id: room,
                content: {
                  [String(txn.events[0]!.event_id)]: { "m.read": { [`@alice:${DOMAIN}`]: { ts: 1 } } },
                },
              },
            ];
            await pusher.push(txn.txnId, { events: txn.events, ephemeral });
            txns++;
            events += txn.events.length;
          }
        }
      })();
      const querying = (async () => {
        for (let k = 0; !stop; k++) {
          const path =
            k % 2 === 0
              ? `/_matrix/app/v1/users/${encodeURIComponent(`@rel_user${k % 200}:${DOMAIN}`)}`
              : `/_matrix/app/v1/rooms/${encodeURIComponent(`#rel_${ROOMS[k % ROOMS.length]}:${DOMAIN}`)}`;
          const res = await fetch(base + path, { headers: auth });
          await res.arrayBuffer();
          assert.equal(res.status, 200, `${path}: ${res.status}`);
          queries++;
          await sleep(20);
        }
      })();
      const t0 = Date.now();
      while (Date.now() - t0 < DURATION_MS) {
        await sleep(1000);
        samples.push({ ...(await child.memory()), at: Date.now() - t0 });
        hs.requests.length = 0; // the fake homeserver's request log is this process's, not the bridge's
      }
      stop = true;
      await Promise.all([pushing, querying]);
      await child.flush();
      await child.drain(); // a 200 means recorded: wait until every event was handled
      const stats = await child.stats();
      await child.stop();

      const warm = samples.filter((s) => s.at > DURATION_MS / 3);
      const first = warm.slice(0, 5);
      const last = warm.slice(-5);
      const heapGrowth = mean(last.map((s) => s.heapUsed)) / mean(first.map((s) => s.heapUsed)) - 1;
      const rssGrowth = mean(last.map((s) => s.rss)) / mean(first.map((s) => s.rss)) - 1;
      const seconds = DURATION_MS / 1000;
      t.diagnostic(
        `load: ${seconds} s; ${txns} transactions, ${events} events (${(events / seconds).toFixed(0)}/s) plus typing ` +
          `and receipts; ${stats.sent} remote sends through the outbox; ${queries} queries; adapter saw ` +
          `${stats.messages} messages, ${stats.memberships} memberships, ${stats.roomChanges} room changes, ` +
          `${stats.typing} typing, ${stats.receipts} receipts; ${samples.length} memory samples after a forced GC; ` +
          `after warm-up (${(seconds / 3).toFixed(0)} s) heap ${mb(mean(first.map((s) => s.heapUsed)))} -> ` +
          `${mb(mean(last.map((s) => s.heapUsed)))} (${(heapGrowth * 100).toFixed(1)}%), rss ` +
          `${mb(mean(first.map((s) => s.rss)))} -> ${mb(mean(last.map((s) => s.rss)))} (${(rssGrowth * 100).toFixed(1)}%); ` +
          `bound ${GROWTH_BOUND * 100}%`,
      );
      assert.ok(
        samples.every((s) => s.gc),
        "samples were taken after a forced GC",
      );
      assert.ok(warm.length >= 10, `only ${warm.length} samples after warm-up`);
      assert.ok(
        events > 0 && (stats.sent ?? 0) > 0 && queries > 0 && (stats.typing ?? 0) > 0,
        "every kind of load ran",
      );
      assert.equal(
        (stats.messages ?? 0) + (stats.memberships ?? 0) + (stats.roomChanges ?? 0),
        events,
        "every acknowledged event reached the adapter once",
      );
      assert.ok(heapGrowth < GROWTH_BOUND, `heap grew ${(heapGrowth * 100).toFixed(1)}% after warm-up`);
      assert.ok(rssGrowth < GROWTH_BOUND, `rss grew ${(rssGrowth * 100).toFixed(1)}% after warm-up`);
    } catch (err) {
      t.diagnostic(`bridge child stderr:\n${child.stderrTail()}`);
      throw err;
    } finally {
      stop = true;
      await child.kill();
      await hs.close();
      await rm(files.dir, { recursive: true, force: true });
    }
  });
});
