/**
 * Ingest: how fast each system acknowledges pushed transactions. A load generator process
 * PUTs Synapse-shaped transactions (fresh txnId, hs_token) to one server process at a time:
 * the bare node:http floor, matrix-appservice 2.0.0, and a whole matrix-bridgekit Bridge
 * with a counting adapter and the durable journal on sqlite, PostgreSQL and Redis. Each
 * scenario gets a warm-up run, then several measured runs; medians are reported. After every
 * run the server's event count is checked against the events acknowledged.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { benchRegistration } from "./lib/bridge-config.js";
import { freshBackend, type BackendName } from "./lib/backends.js";
import type { BenchOptions, BenchOutcome } from "./lib/options.js";
import { summariseProfile, type ProfileSummary } from "./lib/profile.js";
import { machineFacts, RESULTS_DIR, textTable, writeResults } from "./lib/report.js";
import { spawnChild, type Child } from "./lib/rpc.js";
import { storeLatency, type StoreLatency } from "./lib/store-latency.js";
import { median, ratio, round } from "./lib/stats.js";
import type { LoadArgs, LoadResult } from "./load/ingest-load.js";

const ROOMS = 50;
const SCENARIOS = [
  { id: "batch1-inflight1", label: "1 event/txn, 1 in flight", batch: 1, inflight: 1 },
  { id: "batch100-inflight1", label: "100 events/txn, 1 in flight", batch: 100, inflight: 1 },
  { id: "batch100-inflight8", label: "100 events/txn, 8 in flight", batch: 100, inflight: 8 },
] as const;

interface System {
  id: string;
  label: string;
  script: URL;
  backend?: BackendName;
}

const SYSTEMS: System[] = [
  { id: "floor", label: "floor (node:http)", script: new URL("./servers/floor.ts", import.meta.url) },
  { id: "anchor", label: "matrix-appservice 2.0.0", script: new URL("./servers/anchor.ts", import.meta.url) },
  ...(["sqlite", "postgres", "redis", "sqlite-wal"] as const).map((backend) => ({
    id: `bridgekit-${backend}`,
    label: backend === "sqlite-wal" ? "bridgekit sqlite WAL (what-if)" : `bridgekit ${backend}`,
    script: new URL("./servers/bridgekit-ingest.ts", import.meta.url),
    backend,
  })),
];

export interface IngestRow {
  system: string;
  label: string;
  scenario: string;
  eventsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time (user + system, all threads) the server process spent per transaction. */
  serverCpuUsPerTxn: number;
  runs: MeasuredRun[];
}

/** A load run and the CPU time the server process spent during it. */
export interface MeasuredRun extends LoadResult {
  serverCpuUsPerTxn: number;
}

async function measure(
  server: Child<{ port: number }>,
  hsToken: string,
  args: Omit<LoadArgs, "url" | "hsToken" | "runId">,
  runId: string,
): Promise<MeasuredRun> {
  const load = await spawnChild(new URL("./load/ingest-load.ts", import.meta.url), {});
  try {
    const before = await server.call<number>("count");
    const cpuBefore = processCpuMs(server.pid);
    const r = await load.call<LoadResult>("run", {
      ...args,
      url: `http://127.0.0.1:${server.info.port}`,
      hsToken,
      runId,
    } satisfies LoadArgs);
    if (r.errors > 0) throw new Error(`${r.errors} transactions failed, first: ${r.firstError}`);
    // bridgekit acknowledges once events are recorded and handles them afterwards: the run
    // ends when the adapter has seen every acknowledged event, and events/s counts that time.
    const drainStart = performance.now();
    let after = await server.call<number>("count");
    while (after - before < r.events && performance.now() - drainStart < 60_000) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      after = await server.call<number>("count");
    }
    const drainMs = performance.now() - drainStart;
    const cpuMs = processCpuMs(server.pid) - cpuBefore;
    if (after - before !== r.events)
      throw new Error(`the server counted ${after - before} events but acknowledged ${r.events}`);
    const elapsedMs = r.elapsedMs + drainMs;
    return {
      ...r,
      elapsedMs,
      eventsPerSec: elapsedMs > 0 ? (r.events * 1000) / elapsedMs : 0,
      serverCpuUsPerTxn: r.transactions > 0 ? (cpuMs * 1000) / r.transactions : 0,
    };
  } finally {
    await load.stop();
  }
}

function startServer(system: System, hsToken: string, registration: unknown, extra: object = {}) {
  const backend = system.backend ? freshBackend(system.backend) : undefined;
  if (system.backend && !backend) return undefined;
  const config = backend
    ? {
        registration,
        store: backend.url,
        prefix: backend.prefix,
        rooms: ROOMS,
        prefillJournal: true,
        ...extra,
      }
    : { hsToken };
  return { backend, config };
}

export async function ingest(o: BenchOptions): Promise<BenchOutcome> {
  const reps = o.quick ? 1 : 3;
  const durationMs = o.quick ? 500 : 2000;
  const warmupMs = o.quick ? 200 : 1000;
  const registration = benchRegistration("http://127.0.0.1:1");
  const hsToken = registration.hs_token;
  const rows: IngestRow[] = [];
  const skipped: string[] = [];
  let runCounter = 0;
  // BENCH_SYSTEMS=floor,anchor,bridgekit-sqlite narrows a run while working on one system.
  const only = process.env.BENCH_SYSTEMS?.split(",").map((x) => x.trim());
  for (const system of SYSTEMS.filter((x) => !only || only.includes(x.id))) {
    const setup = startServer(system, hsToken, registration);
    if (!setup) {
      skipped.push(`${system.label}: the sqlite3 command-line tool is not installed`);
      continue;
    }
    process.stdout.write(`ingest: ${system.label} `);
    const server = await spawnChild<{ port: number }>(system.script, setup.config);
    try {
      for (const s of SCENARIOS) {
        const args = { batch: s.batch, inflight: s.inflight, rooms: ROOMS };
        await measure(server, hsToken, { ...args, durationMs: warmupMs }, `w${++runCounter}`);
        const runs: MeasuredRun[] = [];
        for (let i = 0; i < reps; i++)
          runs.push(await measure(server, hsToken, { ...args, durationMs }, `r${++runCounter}`));
        rows.push({
          system: system.id,
          label: system.label,
          scenario: s.id,
          eventsPerSec: median(runs.map((r) => r.eventsPerSec)),
          p50Ms: median(runs.map((r) => r.p50Ms)),
          p99Ms: median(runs.map((r) => r.p99Ms)),
          serverCpuUsPerTxn: median(runs.map((r) => r.serverCpuUsPerTxn)),
          runs,
        });
        process.stdout.write(".");
      }
    } finally {
      await server.stop();
      setup.backend?.cleanup();
      process.stdout.write("\n");
    }
  }

  const find = (system: string, scenario: string) =>
    rows.find((r) => r.system === system && r.scenario === scenario);
  const table: Array<Array<string | number>> = [
    [
      "scenario / system",
      "events/s",
      "p50 ms",
      "p99 ms",
      "server CPU us/txn",
      "x matrix-appservice",
      "x floor",
    ],
  ];
  const ratios: Array<{ system: string; scenario: string; vsAnchor: number; vsFloor: number }> = [];
  for (const s of SCENARIOS) {
    table.push([s.label, "", "", "", "", "", ""]);
    for (const r of rows.filter((x) => x.scenario === s.id)) {
      const vsAnchor = ratio(r.eventsPerSec, find("anchor", s.id)?.eventsPerSec);
      const vsFloor = ratio(r.eventsPerSec, find("floor", s.id)?.eventsPerSec);
      if (r.system.startsWith("bridgekit"))
        ratios.push({ system: r.system, scenario: s.id, vsAnchor, vsFloor });
      table.push([
        `  ${r.label}`,
        r.eventsPerSec,
        round(r.p50Ms),
        round(r.p99Ms),
        Math.round(r.serverCpuUsPerTxn),
        vsAnchor,
        vsFloor,
      ]);
    }
  }

  const notes: string[] = [...skipped.map((s) => `skipped ${s}`)];
  const durable = ratios.filter((r) => r.system !== "bridgekit-sqlite-wal");
  const missed = durable.filter((r) => !(r.vsAnchor >= 1.3 && r.vsFloor >= 0.8));
  if (missed.length > 0)
    notes.push(
      `targets (>= 1.3x matrix-appservice, >= 0.8x floor) missed in ${missed.length} of ${durable.length} bridgekit rows`,
    );
  let profiles: Record<string, { summary: ProfileSummary; storeOpsPerEvent: Record<string, number> }> = {};
  let latencies: StoreLatency[] = [];
  if (o.profile || (missed.length > 0 && !o.quick)) {
    profiles = await profileBridgekit(registration, durationMs);
    latencies = await storeLatency(["sqlite", "sqlite-wal", "postgres", "redis"]);
    notes.push(
      `one store operation, sequential, median: ${latencies
        .map((l) => `${l.backend} set ${round(l.setMs)} ms / get ${round(l.getMs)} ms`)
        .join("; ")}`,
    );
    for (const [backend, p] of Object.entries(profiles)) {
      const ops = Object.entries(p.storeOpsPerEvent)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      notes.push(
        `profile bridgekit ${backend} (100 events/txn, 1 in flight): idle ${pct(p.summary.idle)}, gc ${pct(p.summary.gc)}; ` +
          `by origin: ${p.summary.byOrigin
            .slice(0, 6)
            .map((x) => `${x.origin} ${pct(x.share)}`)
            .join(", ")}`,
        `store operations per event on ${backend}: ${ops}`,
      );
    }
  }

  const data = {
    name: "ingest",
    date: new Date().toISOString(),
    machine: machineFacts(),
    quick: o.quick,
    params: { rooms: ROOMS, reps, durationMs, warmupMs, scenarios: SCENARIOS },
    notes: [
      "matrix-appservice answers 200 right after emitting the events synchronously; asynchronous handler work is not awaited and nothing is recorded.",
      "bridgekit acknowledges once the events are recorded in its durable inbox and handles them afterwards; a run ends when its adapter has seen every acknowledged event, and events/s counts until then.",
      ...notes,
    ],
    rows,
    ratios,
    profiles,
    storeLatency: latencies,
  };
  const files = writeResults("ingest", data, {
    title: "Ingest: events acknowledged per second (median)",
    subtitle: `${data.date} ${data.machine.cpu}, ${data.machine.cores} cores, node ${data.machine.node}${o.quick ? " (quick)" : ""}`,
    unit: "events/s",
    log: true,
    groups: SCENARIOS.map((s) => ({
      label: s.label,
      bars: rows.filter((r) => r.scenario === s.id).map((r) => ({ label: r.label, value: r.eventsPerSec })),
    })),
  });
  return { name: "ingest", table: textTable(table), files, notes };
}

/**
 * CPU time (user + system, every thread) a process has used so far, in ms, from
 * /proc/<pid>/stat (Linux; clock ticks of 10 ms, so read it over runs of seconds).
 */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

/** One profiled run per durable backend: CPU profile summary and store operations per event. */
async function profileBridgekit(registration: ReturnType<typeof benchRegistration>, durationMs: number) {
  const out: Record<string, { summary: ProfileSummary; storeOpsPerEvent: Record<string, number> }> = {};
  for (const name of ["sqlite", "redis"] as const) {
    const backend = freshBackend(name)!;
    const dir = join(RESULTS_DIR, "profiles", name); // kept for inspection (chrome://inspect, speedscope)
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const server = await spawnChild<{ port: number }>(
      new URL("./servers/bridgekit-ingest.ts", import.meta.url),
      {
        registration,
        store: backend.url,
        prefix: backend.prefix,
        rooms: ROOMS,
        countOps: true,
        prefillJournal: true,
      },
      { nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`] },
    );
    let events = 0;
    let ops: Record<string, number>;
    try {
      const args = { batch: 100, inflight: 1, rooms: ROOMS };
      await measure(server, registration.hs_token, { ...args, durationMs: 500 }, `pw${name}`);
      await server.call("storeOps");
      events = (await measure(server, registration.hs_token, { ...args, durationMs }, `pr${name}`)).events;
      ops = await server.call<Record<string, number>>("storeOps");
    } finally {
      await server.stop();
      backend.cleanup();
    }
    // The main thread's profile is written as <...>.0.001; tsx's loader thread adds another.
    const file = readdirSync(dir)
      .filter((f) => f.endsWith(".cpuprofile"))
      .sort()[0];
    if (!file) throw new Error(`no CPU profile was written to ${dir}`);
    out[name] = {
      summary: summariseProfile(join(dir, file)),
      storeOpsPerEvent: Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, round(v / events, 2)])),
    };
    process.stdout.write(`ingest: profile of bridgekit ${name} in ${join(dir, file)}\n`);
  }
  return out;
}
