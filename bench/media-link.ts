/**
 * Links the bridge serves (ctx.mediaLink, issue #16): a 200 MB file on a homeserver of its own
 * process (bench/servers/media-hs.ts) downloaded with curl through a link on a whole Bridge's
 * listener (bench/servers/bridgekit-media.ts), beside curl of the same file straight from the
 * homeserver (the anchor: what streaming costs without the bridge in between). Reported: MB/s
 * of each (median of the repetitions) and the bridge process's RSS growth while it streams
 * (largest RSS, sampled every 20 ms, over its RSS after a full GC before the download).
 * Target: RSS growth under 32 MB in every repetition.
 */
import { spawnSync } from "node:child_process";
import { benchRegistration } from "./lib/bridge-config.js";
import type { BenchOptions, BenchOutcome } from "./lib/options.js";
import { machineFacts, textTable, writeResults } from "./lib/report.js";
import { type Child, spawnChild } from "./lib/rpc.js";
import { median, mib, round } from "./lib/stats.js";
import { BENCH_DOMAIN } from "./lib/transactions.js";
import { freePort } from "../test/e2e/support/synapse.js";

const MEDIA_ID = "benchBigFile";
const TARGET_MB = 32;

/** Downloads `url` with curl to /dev/null; bytes and seconds. Throws unless 200 and complete. */
function curl(url: string, size: number, headers: string[] = []): { bytes: number; seconds: number } {
  const r = spawnSync(
    "curl",
    [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{size_download} %{time_total}",
      ...headers.flatMap((h) => ["-H", h]),
      url,
    ],
    { encoding: "utf8" },
  );
  if (r.error) throw new Error(`media-link: curl is needed (${r.error.message})`);
  const [status, bytes, seconds] = r.stdout.trim().split(" ");
  if (status !== "200" || Number(bytes) !== size)
    throw new Error(`media-link: curl got HTTP ${status} and ${bytes} of ${size} bytes: ${r.stderr}`);
  return { bytes: Number(bytes), seconds: Number(seconds) };
}

interface Measured {
  mbps: number[];
  /** Peak RSS over RSS after a forced GC, per repetition. */
  growth: number[];
  /** Peak RSS over RSS as it was before that GC. */
  growthOverIdle: number[];
}

/** One curl download through `child` (a process serving `url`), its RSS growth measured. */
async function through(child: Child, url: string, size: number, into: Measured): Promise<void> {
  const base = await child.call<{ beforeGc: number; afterGc: number }>("baseline");
  const d = curl(url, size);
  const peak = await child.call<number>("peak");
  into.mbps.push(d.bytes / 1e6 / d.seconds);
  into.growth.push(peak - base.afterGc);
  into.growthOverIdle.push(peak - base.beforeGc);
}

const measured = (): Measured => ({ mbps: [], growth: [], growthOverIdle: [] });
const worst = (m: Measured) => ({
  growth: mib(Math.max(...m.growth)),
  idle: mib(Math.max(...m.growthOverIdle)),
});

export async function mediaLink(o: BenchOptions): Promise<BenchOutcome> {
  const size = 200 * 1024 * 1024;
  const reps = o.quick ? 1 : 3;
  const port = await freePort();
  const registration = benchRegistration(`http://127.0.0.1:${port}`);
  const hs = await spawnChild<{ url: string }>(new URL("./servers/media-hs.ts", import.meta.url), {
    asToken: registration.as_token,
    mediaId: MEDIA_ID,
    size,
  });
  const directUrl = `${hs.info.url}/_matrix/client/v1/media/download/${BENCH_DOMAIN}/${MEDIA_ID}`;
  const gc = { nodeFlags: ["--expose-gc"] };
  const bridge = await spawnChild(
    new URL("./servers/bridgekit-media.ts", import.meta.url),
    { registration, hsUrl: hs.info.url, port, mediaId: MEDIA_ID },
    gc,
  );
  const floor = await spawnChild<{ url: string }>(
    new URL("./servers/media-floor.ts", import.meta.url),
    { mediaUrl: directUrl, asToken: registration.as_token },
    gc,
  );
  const viaBridge = measured();
  const viaFloor = measured();
  const direct: number[] = [];
  try {
    const link = await bridge.call<string>("link");
    for (let i = 0; i < reps; i++) {
      const a = curl(directUrl, size, [`Authorization: Bearer ${registration.as_token}`]);
      direct.push(a.bytes / 1e6 / a.seconds);
      await through(bridge, link, size, viaBridge);
      await through(floor, floor.info.url, size, viaFloor);
    }
  } finally {
    await bridge.stop();
    await floor.stop();
    await hs.stop();
  }
  const bkMem = worst(viaBridge);
  const floorMem = worst(viaFloor);
  const bk = median(viaBridge.mbps);
  const fl = median(viaFloor.mbps);
  const anchor = median(direct);
  const table = textTable([
    ["download of 200 MiB", "median MB/s", "min MB/s", "RSS growth over GC'd (MiB)", "over idle (MiB)"],
    [
      "curl through ctx.mediaLink (bridge)",
      round(bk),
      round(Math.min(...viaBridge.mbps)),
      round(bkMem.growth),
      round(bkMem.idle),
    ],
    [
      "curl through a bare node:http proxy (floor)",
      round(fl),
      round(Math.min(...viaFloor.mbps)),
      round(floorMem.growth),
      round(floorMem.idle),
    ],
    ["curl from the homeserver (anchor)", round(anchor), round(Math.min(...direct)), "-", "-"],
  ]);
  const growthMB = (bkMem.growth * 1024 * 1024) / 1e6;
  const notes = [
    `${reps} repetition(s), alternating; the homeserver generates the file as it sends it (its own process); a process's largest RSS (sampled every 20 ms) over its RSS after a forced full GC just before the download, and over its RSS as it was, idle, before that GC (max of the repetitions)`,
    "the bridge reads the homeserver's socket into 4 reused 64 KiB buffers (src/media/pooled-download.ts); the floor's node:http client allocates a fresh buffer per read (up to 64 KiB, outside V8's heap) that waits for V8's next GC, and the allocator keeps the pages",
    `RSS growth per repetition (MiB): bridge ${viaBridge.growth.map((b) => round(mib(b))).join(", ")}; floor ${viaFloor.growth.map((b) => round(mib(b))).join(", ")}`,
    growthMB < TARGET_MB
      ? `target met: RSS growth ${round(growthMB)} MB < ${TARGET_MB} MB`
      : `TARGET MISSED: RSS growth ${round(growthMB)} MB (${round(bkMem.growth)} MiB) >= ${TARGET_MB} MB; the bare proxy: ${round(floorMem.growth)} MiB`,
  ];
  const data = {
    name: "media-link",
    date: new Date().toISOString(),
    machine: machineFacts(),
    quick: o.quick,
    sizeBytes: size,
    notes,
    bridge: viaBridge,
    floor: viaFloor,
    directMBps: direct,
  };
  const files = writeResults("media-link", data, {
    title:
      "A 200 MiB Matrix file: through the bridge's link, a bare proxy, from the homeserver (median MB/s)",
    subtitle: `${data.date}${o.quick ? " (quick)" : ""}; RSS growth: bridge ${round(bkMem.growth)} MiB, bare proxy ${round(floorMem.growth)} MiB`,
    unit: "MB/s",
    groups: [
      {
        label: "download",
        bars: [
          { label: "through ctx.mediaLink", value: bk },
          { label: "bare node:http proxy", value: fl },
          { label: "from the homeserver", value: anchor },
        ],
      },
    ],
  });
  return { name: "media-link", table, files, notes };
}
