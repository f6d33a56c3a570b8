/**
 * matrix-bridgekit for the media-link benchmark: a whole Bridge (sqlite in memory, an adapter
 * that does nothing) with media.publicUrl on its own listener, against the homeserver of
 * bench/servers/media-hs.ts. `link` gives ctx.mediaLink of the benchmark's file; `baseline`
 * and `peak` measure RSS growth (bench/lib/rss-peak.ts).
 */
import { Bridge } from "../../src/bridge/index.js";
import { silentLogger } from "../../src/common/logger.js";
import type { Registration } from "../../src/registration/index.js";
import { openStore } from "../../src/store/index.js";
import { benchConfig } from "../lib/bridge-config.js";
import { rssPeakHandlers } from "../lib/rss-peak.js";
import { serve } from "../lib/rpc.js";
import { BENCH_DOMAIN } from "../lib/transactions.js";

const cfg = JSON.parse(process.argv[2] ?? "{}") as {
  registration: Registration;
  hsUrl: string;
  port: number;
  mediaId: string;
};
const config = benchConfig({ hsUrl: cfg.hsUrl, port: cfg.port, store: "memory://" });
config.media = {
  ...config.media,
  publicUrl: `http://127.0.0.1:${cfg.port}`,
  linkKey: "bench-media-link-key-0123456789",
  linkTtlMs: 3_600_000,
};
const store = await openStore(config.store);
const bridge = new Bridge({
  config,
  registration: cfg.registration,
  adapter: {
    name: "bench",
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    onMessage: () => Promise.resolve(),
  },
  store,
  logger: silentLogger(),
});
await bridge.start();

const rss = rssPeakHandlers();
serve(
  {
    link: () => bridge.context.mediaLink(`mxc://${BENCH_DOMAIN}/${cfg.mediaId}`, { fileName: "big.bin" }),
    baseline: rss.baseline,
    peak: rss.peak,
  },
  null,
  async () => {
    rss.stop();
    await bridge.stop();
  },
);
