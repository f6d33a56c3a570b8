/**
 * Logins: what the framework costs per idle connected login, and how long a bridge takes to
 * reconnect every stored login at start. N logins (10 000; BENCH_LOGINS overrides) are
 * stored through UserStore, each of its own Matrix user with a token as its data; a whole
 * Bridge (bench/servers/bridgekit-logins.ts) whose adapter's `connect` builds an idle
 * session is timed from `bridge.start()` to `bridge.loginsConnected()`, and its heap is
 * measured (after a full GC and the finalizers it queued) against a Bridge with no logins;
 * with 1-5 ms of simulated connect latency, at several connectConcurrency values. The floor
 * (bench/servers/logins-floor.ts) reconnects the same stored logins through the same adapter
 * with a hand-written loop and keeps the sessions in a Map; the adapter's own session
 * objects, measured there, are subtracted from both. Every process runs with --expose-gc.
 * Targets (issue #15): under 5 KB of framework heap per idle login, under 10 s for 10 000.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { benchRegistration } from "./lib/bridge-config.js";
import { freshBackend, type Backend, type BackendName } from "./lib/backends.js";
import { heapDelta, type HeapGroup } from "./lib/heap-summary.js";
import { seedLogins, type LoginsChildConfig, type LoginsRun } from "./lib/logins-common.js";
import type { MemorySnapshot } from "./lib/memory.js";
import type { BenchOptions, BenchOutcome } from "./lib/options.js";
import { summariseProfile, type ProfileSummary } from "./lib/profile.js";
import { machineFacts, RESULTS_DIR, textTable, writeResults } from "./lib/report.js";
import { spawnChild } from "./lib/rpc.js";
import { median, ratio, round } from "./lib/stats.js";

const BRIDGE = new URL("./servers/bridgekit-logins.ts", import.meta.url);
const FLOOR = new URL("./servers/logins-floor.ts", import.meta.url);
/** config.example.yaml's logins.connectConcurrency. */
const DEFAULT_CONCURRENCY = 32;
/** The simulated network latency of a connect, ms. */
const LATENCY = { minMs: 1, maxMs: 5 };
/** The connectConcurrency values tried with latency. */
const CONCURRENCIES = [8, 32, 128, 512];
const TARGET_BYTES_PER_LOGIN = 5 * 1024;
const TARGET_MS_PER_10K = 10_000;
const GC = { nodeFlags: ["--expose-gc"] };

type Registration = ReturnType<typeof benchRegistration>;

/** One timed reconnect configuration, over the repetitions. */
interface TimeRow {
  system: "bridgekit" | "floor";
  backend: BackendName;
  latency: boolean;
  concurrency: number;
  startMs: number;
  connectedMs: number;
  /**
   * The logins' share: start to all connected minus the start of a Bridge with no logins on
   * the same backend (same repetition). The floor: its whole loop.
   */
  loginsMs: number;
  runs: LoginsRun[];
}

/** The heap figures of one repetition, bytes. */
interface MemoryRun {
  /** Heap used by a started Bridge with no logins, and with N connected. */
  bridgeEmpty: number;
  bridgeFull: number;
  /** The floor process with nothing kept (after its loop), with its Map of N sessions, with only the sessions. */
  floorEmpty: number;
  floorFull: number;
  floorSessionsOnly: number;
}

function config(backend: Backend, logins: number, concurrency: number, latency: boolean): LoginsChildConfig {
  const c: LoginsChildConfig = { store: backend.url, prefix: backend.prefix, logins, concurrency };
  if (latency) c.latency = LATENCY;
  return c;
}

/** Starts a Bridge child, runs it, measures its heap; stops it. */
async function runBridge(
  registration: Registration,
  c: LoginsChildConfig,
): Promise<{ run: LoginsRun; memory: MemorySnapshot }> {
  const child = await spawnChild(BRIDGE, { registration, ...c }, GC);
  try {
    const run = await child.call<LoginsRun>("run");
    return { run, memory: await child.call<MemorySnapshot>("memory") };
  } finally {
    await child.stop();
  }
}

/**
 * Runs the floor and measures it with its Map of sessions, with only the sessions kept, and
 * with nothing kept (its baseline, taken last so the loop's code is compiled in it too).
 */
async function runFloor(c: LoginsChildConfig): Promise<{ run: LoginsRun; memory: MemorySnapshot[] }> {
  const child = await spawnChild(FLOOR, c, GC);
  try {
    const run = await child.call<LoginsRun>("run");
    const full = await child.call<MemorySnapshot>("memory");
    await child.call("sessionsOnly");
    const sessions = await child.call<MemorySnapshot>("memory");
    await child.call("dropAll");
    const none = await child.call<MemorySnapshot>("memory");
    return { run, memory: [none, full, sessions] };
  } finally {
    await child.stop();
  }
}

export async function logins(o: BenchOptions): Promise<BenchOutcome> {
  const n = loginCount(o);
  const reps = o.quick ? 1 : 3;
  const registration = benchRegistration("http://127.0.0.1:1");
  const notes: string[] = [];
  /** Per backend: N stored logins, and an empty store (the start of a Bridge with no logins). */
  const seeded: Partial<Record<BackendName, { backend: Backend; empty: Backend; seconds: number }>> = {};
  const backends: BackendName[] = o.quick ? ["sqlite"] : ["sqlite", "postgres", "redis"];
  try {
    for (const name of backends) {
      const backend = freshBackend(name)!;
      process.stdout.write(`logins: seeding ${n} logins on ${name}\n`);
      try {
        const seconds = await seedLogins(backend.url, backend.prefix, n);
        seeded[name] = { backend, empty: freshBackend(name)!, seconds };
      } catch (err) {
        backend.cleanup();
        if (name === "sqlite") throw err;
        notes.push(`skipped ${name}: ${(err as Error).message}`);
      }
    }
    const sqlite = seeded.sqlite!.backend;
    const emptyStarts: Partial<Record<BackendName, number[]>> = {};
    const times = new Map<string, TimeRow>();
    const record = (row: Omit<TimeRow, "startMs" | "connectedMs" | "loginsMs" | "runs">, run: LoginsRun) => {
      const key = `${row.system} ${row.backend} ${row.latency} ${row.concurrency}`;
      const t = times.get(key) ?? { ...row, startMs: 0, connectedMs: 0, loginsMs: 0, runs: [] };
      t.runs.push(run);
      times.set(key, t);
    };
    const memory: MemoryRun[] = [];
    for (let rep = 0; rep < reps; rep++) {
      process.stdout.write(`logins: repetition ${rep + 1} of ${reps} `);
      let none: MemorySnapshot | undefined;
      for (const [name, s] of Object.entries(seeded)) {
        const r = await runBridge(registration, config(s.empty, 0, DEFAULT_CONCURRENCY, false));
        (emptyStarts[name as BackendName] ??= []).push(r.run.startMs);
        if (name === "sqlite") none = r.memory;
      }
      const full = await runBridge(registration, config(sqlite, n, DEFAULT_CONCURRENCY, false));
      const base = { backend: "sqlite", latency: false, concurrency: DEFAULT_CONCURRENCY } as const;
      record({ system: "bridgekit", ...base }, full.run);
      const floor = await runFloor(config(sqlite, n, DEFAULT_CONCURRENCY, false));
      record({ system: "floor", ...base }, floor.run);
      memory.push({
        bridgeEmpty: none!.heapUsedBytes,
        bridgeFull: full.memory.heapUsedBytes,
        floorEmpty: floor.memory[0]!.heapUsedBytes,
        floorFull: floor.memory[1]!.heapUsedBytes,
        floorSessionsOnly: floor.memory[2]!.heapUsedBytes,
      });
      process.stdout.write(".");
      for (const concurrency of CONCURRENCIES) {
        const r = await runBridge(registration, config(sqlite, n, concurrency, true));
        record({ system: "bridgekit", backend: "sqlite", latency: true, concurrency }, r.run);
        process.stdout.write(".");
      }
      const slowFloor = await runFloor(config(sqlite, n, DEFAULT_CONCURRENCY, true));
      record({ system: "floor", ...base, latency: true }, slowFloor.run);
      for (const name of backends.filter((b) => b !== "sqlite" && seeded[b])) {
        const r = await runBridge(registration, config(seeded[name]!.backend, n, DEFAULT_CONCURRENCY, false));
        record({ system: "bridgekit", ...base, backend: name }, r.run);
        process.stdout.write(".");
      }
      process.stdout.write("\n");
    }
    for (const t of times.values()) {
      t.startMs = median(t.runs.map((r) => r.startMs));
      t.connectedMs = median(t.runs.map((r) => r.connectedMs));
      const empty = emptyStarts[t.backend]!;
      t.loginsMs = median(
        t.runs.map((r, i) => (t.system === "floor" ? r.connectedMs : r.connectedMs - empty[i]!)),
      );
    }

    const perLogin = (bytes: number) => (n > 0 ? bytes / n : Number.NaN);
    const m = {
      bridgeTotal: median(memory.map((x) => x.bridgeFull - x.bridgeEmpty)),
      floorTotal: median(memory.map((x) => x.floorFull - x.floorEmpty)),
      sessions: median(memory.map((x) => x.floorSessionsOnly - x.floorEmpty)),
      bridgeEmpty: median(memory.map((x) => x.bridgeEmpty)),
    };
    const framework = m.bridgeTotal - m.sessions;
    const frameworkPerLogin = perLogin(framework);
    const floorTime = (latency: boolean) =>
      [...times.values()].find((t) => t.system === "floor" && t.latency === latency)?.loginsMs;
    const targetMs = (TARGET_MS_PER_10K * n) / 10_000;
    const main = [...times.values()].find(
      (t) =>
        t.system === "bridgekit" &&
        t.backend === "sqlite" &&
        !t.latency &&
        t.concurrency === DEFAULT_CONCURRENCY,
    )!;

    const timeTable: Array<Array<string | number>> = [
      [
        "reconnect at start",
        "connect latency",
        "concurrency",
        "start ms",
        "start to all connected ms",
        "minus an empty start ms",
        "x floor",
      ],
    ];
    for (const t of times.values()) {
      timeTable.push([
        `${t.system === "floor" ? "floor (Map, hand-written loop)" : "bridgekit"} ${t.backend}`,
        t.latency ? `${LATENCY.minMs}-${LATENCY.maxMs} ms` : "none",
        t.concurrency,
        t.system === "floor" ? "-" : round(t.startMs),
        t.system === "floor" ? "-" : round(t.connectedMs),
        round(t.loginsMs),
        ratio(t.loginsMs, floorTime(t.latency)),
      ]);
    }
    const kib = (bytes: number) => round(bytes / 1024, 1);
    const memoryTable = textTable([
      [
        "heap after full GC",
        "total MiB",
        "per login bytes",
        "adapter sessions B/login",
        "overhead B/login",
        "x floor",
      ],
      [
        "bridgekit sqlite",
        round(m.bridgeTotal / 1024 ** 2, 1),
        Math.round(perLogin(m.bridgeTotal)),
        Math.round(perLogin(m.sessions)),
        Math.round(frameworkPerLogin),
        ratio(m.bridgeTotal, m.floorTotal),
      ],
      [
        "floor (Map, hand-written loop)",
        round(m.floorTotal / 1024 ** 2, 1),
        Math.round(perLogin(m.floorTotal)),
        Math.round(perLogin(m.sessions)),
        Math.round(perLogin(m.floorTotal - m.sessions)),
        1,
      ],
    ]);

    const memoryMet = frameworkPerLogin < TARGET_BYTES_PER_LOGIN;
    const timeMet = main.connectedMs < targetMs;
    notes.push(
      `${n} stored logins, each of its own Matrix user; median of ${reps} repetition(s), a fresh process each`,
      `heap: a started Bridge with no logins uses ${round(m.bridgeEmpty / 1024 ** 2, 1)} MiB; ` +
        `with ${n} connected idle logins ${round(m.bridgeTotal / 1024 ** 2, 1)} MiB more`,
      `framework heap per idle login: ${kib(frameworkPerLogin)} KiB (target < 5 KiB): ${memoryMet ? "met" : "MISSED"}`,
      `bridge.start() to every login connected, sqlite, no latency, concurrency ${DEFAULT_CONCURRENCY}: ` +
        `${round(main.connectedMs / 1000, 2)} s (target < ${round(targetMs / 1000, 2)} s for ${n}): ${timeMet ? "met" : "MISSED"}`,
      `bridge.start() with no logins: ${Object.entries(emptyStarts)
        .map(([name, ms]) => `${name} ${round(median(ms))} ms`)
        .join(", ")} (subtracted in "minus an empty start")`,
      `seeding through UserStore: ${Object.entries(seeded)
        .map(([name, s]) => `${name} ${round(s.seconds, 1)} s`)
        .join(", ")}`,
    );

    let profile: { heap: HeapGroup[]; cpu: ProfileSummary } | undefined;
    if (o.profile || !memoryMet || !timeMet) {
      profile = await profileBridge(registration, seeded.sqlite!.empty, sqlite, n);
      notes.push(
        `heap growth by constructor (shallow bytes per login, objects per login): ${profile.heap
          .slice(0, 10)
          .map((g) => `${g.name} ${Math.round(g.bytes / n)} B (${round(g.count / n, 2)})`)
          .join(", ")}`,
        `CPU of the reconnect: idle ${pct(profile.cpu.idle)}, gc ${pct(profile.cpu.gc)}; by origin ${profile.cpu.byOrigin
          .slice(0, 6)
          .map((x) => `${x.origin} ${pct(x.share)}`)
          .join(", ")}; top: ${profile.cpu.topFunctions
          .slice(0, 6)
          .map((f) => `${f.fn} ${pct(f.share)}`)
          .join(", ")}`,
      );
    }

    const data = {
      name: "logins",
      date: new Date().toISOString(),
      machine: machineFacts(),
      quick: o.quick,
      params: { logins: n, reps, latency: LATENCY, concurrencies: CONCURRENCIES },
      notes,
      times: [...times.values()],
      memory: { runs: memory, medians: m, frameworkPerLogin },
      profile,
    };
    const files = writeResults("logins", data, {
      title: `Logins: bridge.start() to ${n} stored logins connected (ms, median)`,
      subtitle: `${data.date} ${data.machine.cpu}, ${data.machine.cores} cores, node ${data.machine.node}${o.quick ? " (quick)" : ""}`,
      unit: "ms",
      groups: [false, true].map((latency) => ({
        label: latency ? `connect latency ${LATENCY.minMs}-${LATENCY.maxMs} ms` : "no latency",
        bars: [...times.values()]
          .filter((t) => t.latency === latency)
          .map((t) => ({ label: `${t.system} ${t.backend} c=${t.concurrency}`, value: t.connectedMs })),
      })),
    });
    return { name: "logins", table: `${textTable(timeTable)}\n\n${memoryTable}`, files, notes };
  } finally {
    for (const s of Object.values(seeded)) {
      s.backend.cleanup();
      s.empty.cleanup();
    }
  }
}

/**
 * Heap snapshots of a started Bridge with no logins and with N connected (the growth by
 * constructor), and a CPU profile of one reconnect, from bridge.start() to every login
 * connected. Kept in bench/results/profiles/logins (open them in Chrome DevTools).
 */
async function profileBridge(
  registration: Registration,
  empty: Backend,
  full: Backend,
  n: number,
): Promise<{ heap: HeapGroup[]; cpu: ProfileSummary }> {
  const dir = join(RESULTS_DIR, "profiles", "logins");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const snapshot = async (backend: Backend, logins: number, file: string) => {
    const child = await spawnChild(
      BRIDGE,
      { registration, ...config(backend, logins, DEFAULT_CONCURRENCY, false) },
      GC,
    );
    try {
      await child.call("run");
      return await child.call<string>("heapSnapshot", { path: join(dir, file) });
    } finally {
      await child.stop();
    }
  };
  const before = await snapshot(empty, 0, "empty.heapsnapshot");
  const after = await snapshot(full, n, `logins-${n}.heapsnapshot`);
  const heap = heapDelta(before, after, 20);
  const cpuProfile = join(dir, "reconnect.cpuprofile");
  const child = await spawnChild(BRIDGE, { registration, ...config(full, n, DEFAULT_CONCURRENCY, false) });
  try {
    await child.call("run", { cpuProfile });
  } finally {
    await child.stop();
  }
  process.stdout.write(`logins: heap snapshots and CPU profile in ${dir}\n`);
  return { heap, cpu: summariseProfile(cpuProfile) };
}

/** N: BENCH_LOGINS when set (a positive integer), else 10 000 (2 000 with --quick). */
function loginCount(o: BenchOptions): number {
  const raw = process.env.BENCH_LOGINS;
  if (raw === undefined || raw === "") return o.quick ? 2_000 : 10_000;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new Error(`BENCH_LOGINS must be a positive integer, got "${raw}"`);
  return value;
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}
