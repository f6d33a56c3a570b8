/**
 * matrix-bridgekit as users run it for the ingest and memory benchmarks: a whole Bridge
 * (appservice, durable transaction journal, router, portals) with a counting adapter, on the
 * given store, against an in-process fake homeserver (only asked at start-up and once per
 * room for the sender's display name). Seeds a portal per bench room so that events reach
 * the adapter; `checkSeed` checks ghosts and portals seeded into the file for the memory benchmark.
 * With `prefillJournal`, the journal starts full (see prefillJournal below).
 */
import { Bridge } from "../../src/bridge/index.js";
import { silentLogger } from "../../src/common/logger.js";
import type { Registration } from "../../src/registration/index.js";
import { GhostStore, openStore, PortalStore, type Store } from "../../src/store/index.js";
import { Inbox } from "../../src/inbox/inbox.js";
import { FakeHomeserver } from "../../test/support/fake-homeserver.js";
import { benchConfig } from "../lib/bridge-config.js";
import { StoreOpCounter } from "../lib/counting-store.js";
import { memorySnapshot } from "../lib/memory.js";
import { serve } from "../lib/rpc.js";
import { benchRoomId, BENCH_DOMAIN } from "../lib/transactions.js";
import { CountingAdapter } from "./counting-adapter.js";

interface Config {
  registration: Registration;
  store: string;
  prefix: string;
  rooms: number;
  /** Count store operations by namespace (profiling runs only). */
  countOps?: boolean;
  /** Fill the journal to its retention before starting (the ingest benchmark). */
  prefillJournal?: boolean;
}

const cfg = JSON.parse(process.argv[2] ?? "{}") as Config;
const hs = await FakeHomeserver.start({
  asToken: cfg.registration.as_token,
  domain: BENCH_DOMAIN,
  botLocalpart: "benchbot",
});
const opened = await openStore(cfg.store, { prefix: cfg.prefix });
const counter = new StoreOpCounter();
const store = cfg.countOps ? counter.wrap(opened) : opened;
const portals = new PortalStore(store);
for (let i = 0; i < cfg.rooms; i++) {
  await portals.link({
    remoteId: `room${i}`,
    roomId: benchRoomId(i),
    alias: `#bench_room${i}:${BENCH_DOMAIN}`,
  });
}
if (cfg.prefillJournal) await prefillInbox(store);
const adapter = new CountingAdapter();
const bridge = new Bridge({
  config: benchConfig({ hsUrl: hs.url, store: cfg.store }),
  registration: cfg.registration,
  adapter,
  store,
  logger: silentLogger(),
});
await bridge.start();

/**
 * Records and handles as many transactions as the inbox retains (benchConfig's 10 000), each
 * with 100 events, through the inbox's own API: every measured transaction then takes the
 * ring slot of an old one, as in a bridge that has run for a while, rather than filling an
 * empty inbox (a short run would never reach the steady state).
 */
async function prefillInbox(on: Store): Promise<void> {
  const transactions = benchConfig({ hsUrl: "", store: "" }).inbox.transactions;
  const inbox = new Inbox(on, { transactions, maxPendingItems: 1_000_000 });
  for (let chunk = 0; chunk < transactions; chunk += 100) {
    const ids = Array.from({ length: 100 }, (_, i) => `prefill-${chunk + i}`);
    await Promise.all(
      ids.map(async (txnId) => {
        const events = Array.from({ length: 100 }, (_, e) => ({
          event_id: `$${txnId}-${e}:${BENCH_DOMAIN}`,
          room_id: benchRoomId(0),
          type: "m.room.message",
          sender: `@prefill:${BENCH_DOMAIN}`,
          origin_server_ts: 0,
          content: {},
        }));
        const entry = await inbox.record(txnId, {
          events,
          toDevice: [],
          deviceLists: undefined,
          keyCounts: undefined,
        });
        if (entry) await Promise.all(entry.items.map((_, i) => inbox.markHandled(entry, i)));
      }),
    );
  }
}

/**
 * Checks, through the repositories, that ghosts and portals seeded straight into the file
 * (bench/lib/seed-sqlite.ts) read back as the Bridge would read them.
 */
async function checkSeed(a: { ghosts: number; portals: number }) {
  const ghosts = new GhostStore(store);
  for (const i of [0, Math.floor(a.ghosts / 2), a.ghosts - 1]) {
    const g = await ghosts.getByUserId(`@bench_user${i}:${BENCH_DOMAIN}`);
    if (g?.remoteId !== `user${i}`)
      throw new Error(`seeded ghost user${i} does not read back: ${JSON.stringify(g)}`);
  }
  for (const i of [0, Math.floor(a.portals / 2), a.portals - 1]) {
    const p = await portals.getByRoomId(`!seeded${i}:${BENCH_DOMAIN}`);
    if (p?.remoteId !== `seeded${i}`) throw new Error(`seeded portal seeded${i} does not read back`);
  }
  return true;
}

serve(
  {
    count: () => adapter.count,
    memory: () => {
      hs.requests.length = 0; // the fake homeserver's request log is not the bridge's memory
      return memorySnapshot();
    },
    checkSeed,
    /** Store operations since the last call, by "namespace op". */
    storeOps: () => counter.take(),
  },
  { port: bridge.listeningPort },
  async () => {
    await bridge.stop();
    await store.close();
    await hs.close();
  },
);
