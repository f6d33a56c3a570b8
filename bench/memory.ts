/**
 * Memory: RSS and heap of a Bridge process (sqlite store) that knows 100 000 ghosts and
 * 10 000 portals, at start and while Matrix traffic flows through the appservice over HTTP
 * (transactions of 100 events, 8 in flight, counting adapter), next to matrix-appservice
 * given the same traffic. Each process runs with --expose-gc and is measured after a full GC.
 * The traffic stops at 1M events or at the time budget, whichever comes first: on a disk
 * where every sqlite commit is an fsync, bridgekit cannot push 1M events in the budget, and
 * the result says how many it did. BENCH_MEMORY_EVENTS and BENCH_MEMORY_BUDGET_S (seconds)
 * override the target and the budget for a long run.
 */
import { benchRegistration } from "./lib/bridge-config.js";
import { freshBackend } from "./lib/backends.js";
import type { MemorySnapshot } from "./lib/memory.js";
import type { BenchOptions, BenchOutcome } from "./lib/options.js";
import { machineFacts, textTable, writeResults } from "./lib/report.js";
import { spawnChild, type Child } from "./lib/rpc.js";
import { seedSqliteFile } from "./lib/seed-sqlite.js";
import { mib } from "./lib/stats.js";
import type { LoadResult } from "./load/ingest-load.js";

const ROOMS = 50;
const BATCH = 100;
const INFLIGHT = 8;

interface Sample {
  events: number;
  seconds: number;
  memory: MemorySnapshot;
}

interface Traffic {
  events: number;
  seconds: number;
  samples: Sample[];
}

/** Pushes up to `targetEvents` in chunks of `chunkMs`, sampling memory after each chunk. */
async function push(
  server: Child<{ port: number }>,
  hsToken: string,
  targetEvents: number,
  budgetMs: number,
  chunkMs: number,
  label: string,
): Promise<Traffic> {
  const load = await spawnChild(new URL("./load/ingest-load.ts", import.meta.url), {});
  const samples: Sample[] = [{ events: 0, seconds: 0, memory: await server.call<MemorySnapshot>("memory") }];
  const started = performance.now();
  let events = 0;
  let chunk = 0;
  try {
    while (events < targetEvents && performance.now() - started < budgetMs) {
      const before = await server.call<number>("count");
      const r = await load.call<LoadResult>("run", {
        url: `http://127.0.0.1:${server.info.port}`,
        hsToken,
        runId: `${label}-${++chunk}`,
        batch: BATCH,
        inflight: INFLIGHT,
        rooms: ROOMS,
        durationMs: chunkMs,
        maxTransactions: Math.ceil((targetEvents - events) / BATCH),
      });
      if (r.errors > 0) throw new Error(`${label}: ${r.errors} transactions failed, first: ${r.firstError}`);
      const after = await server.call<number>("count");
      if (after - before !== r.events)
        throw new Error(`${label}: the server counted ${after - before} events but acknowledged ${r.events}`);
      events += r.events;
      samples.push({
        events,
        seconds: (performance.now() - started) / 1000,
        memory: await server.call<MemorySnapshot>("memory"),
      });
    }
  } finally {
    await load.stop();
  }
  return { events, seconds: (performance.now() - started) / 1000, samples };
}

export async function memory(o: BenchOptions): Promise<BenchOutcome> {
  const ghosts = o.quick ? 10_000 : 100_000;
  const portals = o.quick ? 1_000 : 10_000;
  const targetEvents = envInt("BENCH_MEMORY_EVENTS") ?? (o.quick ? 100_000 : 1_000_000);
  const budgetMs = (envInt("BENCH_MEMORY_BUDGET_S") ?? (o.quick ? 5 : 60)) * 1000;
  const chunkMs = o.quick ? 2_000 : 10_000;
  const registration = benchRegistration("http://127.0.0.1:1");
  const flags = { nodeFlags: ["--expose-gc"] };

  process.stdout.write(`memory: bridgekit sqlite with ${ghosts} ghosts, ${portals} portals `);
  const backend = freshBackend("sqlite")!;
  const seedStarted = performance.now();
  seedSqliteFile(backend.url.slice("sqlite://".length), backend.prefix, ghosts, portals);
  const seedSeconds = (performance.now() - seedStarted) / 1000;
  let bridgekit: Traffic;
  let bridgekitPeak: MemorySnapshot;
  const bk = await spawnChild<{ port: number }>(
    new URL("./servers/bridgekit-ingest.ts", import.meta.url),
    { registration, store: backend.url, prefix: backend.prefix, rooms: ROOMS },
    flags,
  );
  try {
    await bk.call("checkSeed", { ghosts, portals });
    bridgekit = await push(bk, registration.hs_token, targetEvents, budgetMs, chunkMs, "bk");
    bridgekitPeak = await bk.call<MemorySnapshot>("memory");
  } finally {
    await bk.stop();
    backend.cleanup();
    process.stdout.write("\n");
  }

  process.stdout.write(`memory: matrix-appservice with the same ${bridgekit.events} events\n`);
  let anchor: Traffic;
  const as = await spawnChild<{ port: number }>(
    new URL("./servers/anchor.ts", import.meta.url),
    { hsToken: registration.hs_token },
    flags,
  );
  try {
    anchor = await push(as, registration.hs_token, bridgekit.events, budgetMs, chunkMs, "as");
  } finally {
    await as.stop();
  }

  const first = (t: Traffic) => t.samples[0]!.memory;
  const last = (t: Traffic) => t.samples[t.samples.length - 1]!.memory;
  const table = textTable([
    ["system", "events", "RSS start MiB", "RSS end MiB", "heap start MiB", "heap end MiB", "max RSS MiB"],
    [
      `bridgekit sqlite (${ghosts} ghosts, ${portals} portals)`,
      bridgekit.events,
      mib(first(bridgekit).rssBytes),
      mib(last(bridgekit).rssBytes),
      mib(first(bridgekit).heapUsedBytes),
      mib(last(bridgekit).heapUsedBytes),
      mib(bridgekitPeak.maxRssBytes),
    ],
    [
      "matrix-appservice 2.0.0",
      anchor.events,
      mib(first(anchor).rssBytes),
      mib(last(anchor).rssBytes),
      mib(first(anchor).heapUsedBytes),
      mib(last(anchor).heapUsedBytes),
      mib(last(anchor).maxRssBytes),
    ],
  ]);
  const notes: string[] = [
    `traffic: HTTP PUT /transactions, ${BATCH} events each, ${INFLIGHT} in flight, ${ROOMS} rooms; measured after a full GC`,
    `seeded ${ghosts} ghosts and ${portals} portals into the sqlite file in ${seedSeconds.toFixed(1)} s (one SQL transaction)`,
  ];
  if (bridgekit.events < targetEvents)
    notes.push(
      `bridgekit reached ${bridgekit.events} of ${targetEvents} events in the ${budgetMs / 1000} s budget ` +
        `(${Math.round(bridgekit.events / bridgekit.seconds)} events/s on sqlite); memory samples show the trend`,
    );
  const data = {
    name: "memory",
    date: new Date().toISOString(),
    machine: machineFacts(),
    quick: o.quick,
    params: { ghosts, portals, targetEvents, budgetMs, batch: BATCH, inflight: INFLIGHT, rooms: ROOMS },
    notes,
    bridgekit,
    anchor,
  };
  const files = writeResults("memory", data, {
    title: "Memory after traffic (MiB, after full GC)",
    subtitle: `${data.date} ${bridgekit.events} events; bridgekit knows ${ghosts} ghosts and ${portals} portals${o.quick ? " (quick)" : ""}`,
    unit: "MiB",
    groups: [
      {
        label: "RSS",
        bars: [
          { label: "bridgekit sqlite", value: mib(last(bridgekit).rssBytes) },
          { label: "matrix-appservice", value: mib(last(anchor).rssBytes) },
        ],
      },
      {
        label: "heap used",
        bars: [
          { label: "bridgekit sqlite", value: mib(last(bridgekit).heapUsedBytes) },
          { label: "matrix-appservice", value: mib(last(anchor).heapUsedBytes) },
        ],
      },
    ],
  });
  return { name: "memory", table, files, notes };
}

/** A positive integer from the environment, or undefined when unset; throws naming the variable otherwise. */
function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}
