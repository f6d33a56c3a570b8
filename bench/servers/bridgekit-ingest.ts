/**
 * matrix-bridgekit as users run it for the ingest and memory benchmarks: a whole Bridge
 * (appservice, durable transaction journal, router, portals) with a counting adapter, on the
 * given store, against an in-process fake homeserver (only asked at start-up and once per
 * room for the sender's display name). Seeds a portal per bench room so that events reach
 * the adapter; `seed` adds more ghosts and portals for the memory benchmark.
 */
import { Bridge } from "../../src/bridge/index.js";
import { silentLogger } from "../../src/common/logger.js";
import type { Registration } from "../../src/registration/index.js";
import { GhostStore, openStore, PortalStore } from "../../src/store/index.js";
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
const adapter = new CountingAdapter();
const bridge = new Bridge({
  config: benchConfig({ hsUrl: hs.url, store: cfg.store }),
  registration: cfg.registration,
  adapter,
  store,
  logger: silentLogger(),
});
await bridge.start();

/** Links `ghosts` more remote users and `portals` more remote rooms, `parallel` writes at a time. */
async function seed(a: { ghosts: number; portals: number; parallel?: number }) {
  const ghosts = new GhostStore(store);
  const t0 = performance.now();
  const parallel = a.parallel ?? 64;
  const inBatches = async (n: number, fn: (i: number) => Promise<unknown>) => {
    for (let i = 0; i < n; i += parallel) {
      await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, (_, j) => fn(i + j)));
    }
  };
  await inBatches(a.ghosts, (i) => ghosts.link(`user${i}`, `@bench_user${i}:${BENCH_DOMAIN}`));
  await inBatches(a.portals, (i) =>
    portals.link({
      remoteId: `seeded${i}`,
      roomId: `!seeded${i}:${BENCH_DOMAIN}`,
      alias: `#bench_seeded${i}:${BENCH_DOMAIN}`,
    }),
  );
  hs.requests.length = 0;
  return { seconds: (performance.now() - t0) / 1000 };
}

serve(
  {
    count: () => adapter.count,
    memory: () => {
      hs.requests.length = 0; // the fake homeserver's request log is not the bridge's memory
      return memorySnapshot();
    },
    seed,
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
