/**
 * A whole bridge in its own process, for tests that kill it. Started by ChildBridge (see
 * child-bridge.ts) with `BK_RELIABILITY_CHILD` holding ChildOptions as JSON. It loads the
 * config and registration files with the real loaders, opens the configured store, runs a
 * Bridge with the RecordingAdapter (or the LoadAdapter) and talks to the parent over IPC:
 *
 *   child -> parent: {type: "ready"} once Bridge.start() resolved; {type: "memory", ...};
 *                    {type: "flushed"}; {type: "drained"}; {type: "stats", ...};
 *                    {type: "fatal", message}
 *   parent -> child: {type: "memory"} (forces a GC first when run with --expose-gc),
 *                    {type: "flush"} (the outbox is delivered), {type: "drain"} (every item
 *                    recorded in the inbox was handled or dead-lettered: appservice.drain()),
 *                    {type: "stats"}, {type: "stop"} (graceful stop, exit 0)
 */
import { Bridge } from "../../../src/bridge/index.js";
import { createLogger } from "../../../src/common/logger.js";
import { loadConfig } from "../../../src/config/load.js";
import { loadRegistration } from "../../../src/registration/load.js";
import { openStore } from "../../../src/store/index.js";
import type { RemoteNetworkAdapter } from "../../../src/adapter/index.js";
import { LoadAdapter } from "./load-adapter.js";
import { RecordingAdapter } from "./recording-adapter.js";
import type { ChildMessage, ChildOptions, ParentMessage } from "./child-protocol.js";

function send(message: ChildMessage): void {
  process.send?.(message);
}

function fatal(err: unknown): never {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`bridge child failed: ${message}\n`);
  send({ type: "fatal", message });
  process.exit(1);
}

async function main(): Promise<void> {
  const raw = process.env.BK_RELIABILITY_CHILD;
  if (raw === undefined) throw new Error("BK_RELIABILITY_CHILD is not set (run through ChildBridge)");
  const opts = JSON.parse(raw) as ChildOptions;
  const config = await loadConfig(opts.configPath, {});
  const registration = await loadRegistration(config.appservice.registration);
  const logger = createLogger({ level: config.logging.level, name: "bridge-child" }, process.stderr);
  const store = await openStore(config.store, {
    baseDir: config.configDir,
    ...(opts.storePrefix !== undefined ? { prefix: opts.storePrefix } : {}),
  });
  let adapter: RemoteNetworkAdapter;
  let stats: () => Record<string, number> = () => ({});
  if (opts.adapter.kind === "recording") {
    adapter = new RecordingAdapter(opts.adapter, fatal);
  } else {
    const load = new LoadAdapter(opts.adapter, fatal);
    adapter = load;
    stats = () => load.stats();
  }
  const bridge = new Bridge({
    config,
    registration,
    adapter,
    store,
    logger,
    ownsStore: true,
    outboxRetry: { minDelayMs: 20, maxDelayMs: 250 },
  });
  process.on("message", (message: ParentMessage) => {
    const run = async () => {
      switch (message.type) {
        case "memory": {
          const gc = (globalThis as { gc?: () => void }).gc;
          if (gc) gc();
          const m = process.memoryUsage();
          send({
            type: "memory",
            rss: m.rss,
            heapUsed: m.heapUsed,
            heapTotal: m.heapTotal,
            gc: gc !== undefined,
          });
          return;
        }
        case "flush":
          await bridge.flush();
          send({ type: "flushed" });
          return;
        case "drain":
          await bridge.appservice.drain();
          send({ type: "drained" });
          return;
        case "stats":
          send({ type: "stats", stats: stats() });
          return;
        case "stop":
          await bridge.stop();
          process.exit(0);
      }
    };
    run().catch(fatal);
  });
  await bridge.start();
  send({ type: "ready", pid: process.pid });
}

main().catch(fatal);
