/**
 * matrix-bridgekit for the logins benchmark: a whole Bridge on the given store, whose
 * adapter's `connect` builds an idle session (bench/servers/idle-logins-adapter.ts), against
 * an in-process fake homeserver. `run` times `bridge.start()` to `bridge.loginsConnected()`
 * and checks that every stored login is connected (CPU-profiled on request); `memory`
 * measures after a full GC and the finalizers it queued (bench/lib/settled-memory.ts).
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { writeHeapSnapshot } from "node:v8";
import { Bridge } from "../../src/bridge/index.js";
import { silentLogger } from "../../src/common/logger.js";
import type { Registration } from "../../src/registration/index.js";
import { openStore } from "../../src/store/index.js";
import { FakeHomeserver } from "../../test/support/fake-homeserver.js";
import { benchConfig } from "../lib/bridge-config.js";
import { benchLoginId, type LoginsChildConfig, type LoginsRun } from "../lib/logins-common.js";
import { settledMemorySnapshot } from "../lib/settled-memory.js";
import { serve } from "../lib/rpc.js";
import { BENCH_DOMAIN } from "../lib/transactions.js";
import { idleLoginsAdapter } from "./idle-logins-adapter.js";

const cfg = JSON.parse(process.argv[2] ?? "{}") as LoginsChildConfig & { registration: Registration };
const hs = await FakeHomeserver.start({
  asToken: cfg.registration.as_token,
  domain: BENCH_DOMAIN,
  botLocalpart: "benchbot",
});
const store = await openStore(cfg.store, { prefix: cfg.prefix });
const adapter = idleLoginsAdapter(cfg.latency ? { latency: cfg.latency } : {});
const config = benchConfig({ hsUrl: hs.url, store: cfg.store });
config.logins.connectConcurrency = cfg.concurrency;
const bridge = new Bridge({ config, registration: cfg.registration, adapter, store, logger: silentLogger() });

/** Runs `fn` under the CPU profiler (100 us samples) and writes the profile to `path`. */
async function profiled<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  try {
    return await fn();
  } finally {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(path, JSON.stringify(profile));
    session.disconnect();
  }
}

async function run(): Promise<LoginsRun> {
  const t0 = performance.now();
  await bridge.start();
  const started = performance.now();
  await bridge.loginsConnected();
  const done = performance.now();
  const logins = bridge.logins!;
  let connected = 0;
  for (let i = 0; i < cfg.logins; i++) {
    const live = logins.get(benchLoginId(i));
    if (live?.state === "connected" && live.session) connected++;
  }
  if (connected !== cfg.logins || logins.size !== cfg.logins || adapter.connects !== cfg.logins)
    throw new Error(
      `${connected} of ${cfg.logins} stored logins connected (${logins.size} held, ${adapter.connects} connects)`,
    );
  return { startMs: started - t0, connectedMs: done - t0, connected };
}

serve(
  {
    /** With `cpuProfile`, the run is CPU-profiled into that file. */
    run: (a: { cpuProfile?: string } | null) => (a?.cpuProfile ? profiled(a.cpuProfile, run) : run()),
    memory: () => {
      hs.requests.length = 0; // the fake homeserver's request log is not the bridge's memory
      return settledMemorySnapshot();
    },
    heapSnapshot: async (a: { path: string }) => {
      hs.requests.length = 0;
      await settledMemorySnapshot();
      return writeHeapSnapshot(a.path);
    },
  },
  {},
  async () => {
    await bridge.stop();
    await store.close();
    await hs.close();
  },
);
